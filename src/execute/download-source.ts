import { InvalidOptionError } from '../errors.js';
import { RUN_ID } from '../model/run-id.js';
import type { ArtifactSource } from '../stage/attempt-artifacts.js';
import { checkOptionsObject, describe } from '../validate.js';
import type { DownloadOptions } from './partition-context.js';

/** Why a partition of the running run cannot be read, and what to do instead. */
const ORDER_DEPENDENT =
  'what another of its partitions holds depends on the order partitions run, so it cannot be read. Give the runId of another run (a training run whose models to use, say); ' +
  'to read what this attempt uploaded, leave out runId, partitionId and stagePath';

const DOWNLOAD_KEYS = ['stagePath', 'runId', 'partitionId', 'readFunction'] as const;

/**
 * Where `downloadFromStage(filename, options)` reads from, its options checked: this attempt's
 * own uploads (no option), a folder of the stage (`stagePath`), or a partition of another run by
 * its id (`runId`, `partitionId` — the calling partition's own id when left out). See
 * {@link DownloadOptions} for why a partition of the calling run itself cannot be named.
 */
export function downloadSource(options: DownloadOptions<unknown> | undefined, self: { runId: string; partitionId: string }): ArtifactSource {
  if (options === undefined) return undefined;
  const record = checkOptionsObject(options, 'downloadFromStage', DOWNLOAD_KEYS);
  const { stagePath, runId, partitionId, readFunction } = record;
  if (readFunction !== undefined && typeof readFunction !== 'function') {
    throw new InvalidOptionError('downloadFromStage.readFunction', `expected a function (localPath) => value, got ${describe(readFunction)}`);
  }
  if (stagePath !== undefined && (runId !== undefined || partitionId !== undefined)) {
    const given = runId !== undefined && partitionId !== undefined ? 'runId and partitionId' : runId !== undefined ? 'runId' : 'partitionId';
    throw new InvalidOptionError(
      'downloadFromStage.stagePath',
      `cannot be given with ${given}: they are two ways to say where to read from. Give { runId, partitionId } for a partition of another run, ` +
        'or stagePath alone for a folder of the stage',
    );
  }
  if (stagePath !== undefined) {
    if (typeof stagePath !== 'string') throw new InvalidOptionError('downloadFromStage.stagePath', `expected a folder relative to the stage's root, got ${describe(stagePath)}`);
    if (stagePath.split(/[\\/]/).find((segment) => segment !== '') === self.runId) {
      throw new InvalidOptionError(
        'downloadFromStage.stagePath',
        `"${stagePath}" is a folder of this run, "${self.runId}", which is still running: ${ORDER_DEPENDENT}`,
      );
    }
    return { stagePath };
  }
  if (runId === undefined && partitionId === undefined) return undefined;
  if (partitionId !== undefined && typeof partitionId !== 'string') {
    throw new InvalidOptionError('downloadFromStage.partitionId', `expected a partition id (a string, as the run names its partitions), got ${describe(partitionId)}`);
  }
  if (runId === undefined || runId === self.runId) {
    throw new InvalidOptionError(
      runId === undefined ? 'downloadFromStage.partitionId' : 'downloadFromStage.runId',
      `${runId === undefined ? 'without runId names a partition of this run' : `"${self.runId}" is this run`}, "${self.runId}", which is still running: ${ORDER_DEPENDENT}`,
    );
  }
  if (typeof runId !== 'string' || !RUN_ID.test(runId)) {
    throw new InvalidOptionError('downloadFromStage.runId', `expected the id of a run on this stage (letters, digits, ".", "_" and "-"), got ${describe(runId)}`);
  }
  return { runId, partitionId: partitionId ?? self.partitionId };
}
