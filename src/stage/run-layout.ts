import { joinStagePath } from './stage.js';

/**
 * Where a run keeps what on the stage:
 *
 * ```
 * {runId}/
 *   {partition folder}/      artifacts + partition.log
 *   _dpf/run.json            the run's spec (mode, input, module, options, id encoding)
 *   _dpf/partitions.json     the planned partitions (ids, folders, sizes, input references)
 *   _dpf/journal.ndjson      every status change, appended in batches
 *   _dpf/lock                the live driver's claim on the run (pid, host, heartbeat)
 *   _dpf/cancel              written by anyone who asks the run to stop
 *   _dpf/input/              DataFrame mode: the planned partition data
 * ```
 */
export const RUN_STATE_FOLDER = '_dpf';
export const PARTITION_LOG = 'partition.log';
/** Prefix of an attempt's not yet committed artifacts inside a partition folder. */
export const STAGING_PREFIX = '.dpf-attempt-';

export class RunLayout {
  constructor(readonly runId: string) {}

  get root(): string {
    return this.runId;
  }
  get stateFolder(): string {
    return joinStagePath(this.runId, RUN_STATE_FOLDER);
  }
  get spec(): string {
    return joinStagePath(this.stateFolder, 'run.json');
  }
  get partitions(): string {
    return joinStagePath(this.stateFolder, 'partitions.json');
  }
  get journal(): string {
    return joinStagePath(this.stateFolder, 'journal.ndjson');
  }
  get lock(): string {
    return joinStagePath(this.stateFolder, 'lock');
  }
  get cancelRequest(): string {
    return joinStagePath(this.stateFolder, 'cancel');
  }
  get inputFolder(): string {
    return joinStagePath(this.stateFolder, 'input');
  }
  partitionFolder(folder: string): string {
    return joinStagePath(this.runId, folder);
  }
  partitionLog(folder: string): string {
    return joinStagePath(this.runId, folder, PARTITION_LOG);
  }
  artifact(folder: string, name: string): string {
    return joinStagePath(this.runId, folder, name);
  }
  stagedArtifact(folder: string, attempt: number, name: string): string {
    return joinStagePath(this.runId, folder, `${STAGING_PREFIX}${attempt}-${name}`);
  }
}
