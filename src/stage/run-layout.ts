import { joinStagePath } from './stage.js';

/**
 * Where a run keeps what on the stage — every object written once, except the lease (replaced
 * only if unchanged), the input manifest and the checkpoint hint (each with one writer):
 *
 * ```
 * {runId}/
 *   {partition folder}/{name}           an artifact, under the name the function gave (created only if absent)
 *   {partition folder}/.dpf-attempt-{token}/{name}
 *                                       an artifact whose name an earlier, unrecorded attempt took; a large log
 *   _dpf/run.json                       the run's spec; its create-if-absent publishes the run
 *   _dpf/lease.json                     which driver owns the run, under which epoch (the fencing token)
 *   _dpf/partitions/{epoch}.json        the partition list, written again when a resume adds partitions
 *   _dpf/journal/{seq}.ndjson           the journal's numbered segments (see model/journal.ts)
 *   _dpf/checkpoints/{seq}.json         the state folded up to a segment, for long runs
 *   _dpf/packs/{writer}-{n}.pack        small artifacts and logs, many partitions' per object
 *   _dpf/cancel                         written by anyone who asks the run to stop
 *   _dpf/live/{token}.log               the tail of a running attempt's log, rewritten while it runs
 *                                       (attempts over a second); deleted when the run ends
 *   _dpf/input/{epoch}/                 DataFrame mode: the planned partition data (StartRecord.input says which)
 * ```
 *
 * Nothing is found by listing a partition's folder: the journal's records say where every
 * artifact and log is (model/refs.ts).
 */
export const RUN_STATE_FOLDER = '_dpf';
/** The name `dpf export` and the CLI give a partition's log; reserved as an artifact name. */
export const PARTITION_LOG = 'partition.log';
/** Prefix of the folder of an attempt's files that could not take their own names. */
export const ATTEMPT_FOLDER_PREFIX = '.dpf-attempt-';

const SEQ_DIGITS = 12;

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
  get lease(): string {
    return joinStagePath(this.stateFolder, 'lease.json');
  }
  partitionList(epoch: number): string {
    return joinStagePath(this.stateFolder, 'partitions', `${String(epoch).padStart(6, '0')}.json`);
  }
  get journalFolder(): string {
    return joinStagePath(this.stateFolder, 'journal') + '/';
  }
  segment(seq: number): string {
    return `${this.journalFolder}${String(seq).padStart(SEQ_DIGITS, '0')}.ndjson`;
  }
  /** The sequence number of a journal segment's path, or undefined for anything else in the folder. */
  segmentSeq(path: string): number | undefined {
    const match = /\/(\d+)\.ndjson$/.exec(path);
    return match === null || !path.startsWith(this.journalFolder) ? undefined : Number(match[1]);
  }
  get checkpointFolder(): string {
    return joinStagePath(this.stateFolder, 'checkpoints') + '/';
  }
  checkpoint(seq: number): string {
    return `${this.checkpointFolder}${String(seq).padStart(SEQ_DIGITS, '0')}.json`;
  }
  pack(writer: string, n: number): string {
    return joinStagePath(this.stateFolder, 'packs', `${writer}-${String(n).padStart(6, '0')}.pack`);
  }
  /** Where a running attempt's log tail is while it runs (read only for a partition RUNNING that attempt). */
  liveLog(token: string): string {
    return joinStagePath(this.liveLogFolder, `${token}.log`);
  }
  get liveLogFolder(): string {
    return joinStagePath(this.stateFolder, 'live') + '/';
  }
  get cancelRequest(): string {
    return joinStagePath(this.stateFolder, 'cancel');
  }
  /**
   * Where the DataFrame input written under `epoch` is: each write of the input has a folder of its
   * own, so a replaced driver still writing its input cannot change the one a newer driver wrote.
   */
  inputFolder(epoch: number): string {
    return joinStagePath(this.stateFolder, 'input', String(epoch));
  }
  partitionFolder(folder: string): string {
    return joinStagePath(this.runId, folder);
  }
  artifact(folder: string, name: string): string {
    return joinStagePath(this.runId, folder, name);
  }
  /** Where an attempt's file goes when its own name is taken. */
  attemptFile(folder: string, token: string, name: string): string {
    return joinStagePath(this.runId, folder, `${ATTEMPT_FOLDER_PREFIX}${token}`, name);
  }
}
