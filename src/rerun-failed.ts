import { DPF, type DPFOptions } from './dpf.js';
import type { ExecutionOptions } from './execution-options.js';
import { NothingToRerunError, RunInProgressError } from './errors.js';
import type { ResolvedExecutionOptions, SessionTarget } from './model/run-spec.js';
import { DPFRun } from './run/dpf-run.js';
import { PartitionStatus, RunStatus } from './status.js';

/** The partitions {@link rerunFailed} runs again: every one that is not DONE. */
export const RERUN_STATUSES: ReadonlySet<PartitionStatus> = new Set([PartitionStatus.FAILED, PartitionStatus.INTERNAL_ERROR, PartitionStatus.CANCELLED, PartitionStatus.PENDING]);

/** Options of {@link rerunFailed}. */
export interface RerunOptions {
  /**
   * The run's PostgreSQL session database with its password, when neither libpq's `PGPASSWORD`
   * nor `PGPASSFILE` gives it (the run records the URL without it). It must name the run's database.
   */
  sessionDatabase?: string;
  /** A queue run's Redis URL with its password (the run records it without): it must be the run's queue. */
  queueUrl?: string;
}

/**
 * Runs again the partitions of a run that did not end DONE — FAILED, INTERNAL_ERROR, CANCELLED,
 * and PENDING (a run whose driver died, or was cancelled before reaching them) — keeping the DONE
 * ones (`onExistingArtifacts: 'resume'`). The rerun calls the function the run was made with (its
 * module and export, `args`, the many-model layer of a ManyModelTraining/Inference run) with its
 * execution options and session database: in stage mode on the same files, in DataFrame mode on
 * the input it planned (the source is not read again). A queue run goes back to its queue. The
 * module is loaded from where the run found it, so a fix made there is what runs.
 *
 * Returns the started run without waiting for it. Refuses, before any work, a run a live driver
 * is executing ({@link RunInProgressError}: wait for it or cancel it first) and a run with nothing
 * to rerun ({@link NothingToRerunError}).
 *
 * @example
 * ```ts
 * const rerun = await rerunFailed('store-sales', './stage');
 * console.log(await rerun.wait()); // SUCCESS once the cause is fixed
 * ```
 */
export async function rerunFailed(runId: string, stage: string | URL, options: RerunOptions = {}): Promise<DPFRun> {
  const run = await DPFRun.restoreFrom(runId, stage);
  if (run.status === RunStatus.IN_PROGRESS && !run.abandoned) {
    const holder = run.driverLease;
    const who = run.waitingForDriver ? 'is on its queue, waiting for a dpf worker to drive it' : `is being executed right now${holder === undefined ? '' : ` by pid ${holder.pid} on ${holder.host}`}`;
    throw new RunInProgressError(`Run "${runId}" ${who}; wait for it to end (\`dpf status ${runId}\`), or cancel it (\`dpf cancel ${runId}\`), then rerun its failed partitions`);
  }
  const start = run.lastStart;
  if (start?.module === undefined || start.options === undefined) {
    throw new NothingToRerunError(
      `Run "${runId}" never started (its creation stopped before its first driver recorded how it runs), so there is nothing to rerun it from; run it again with onExistingArtifacts: 'overwrite' (\`dpf run … --overwrite\`)`,
    );
  }
  const ids = run.selectPartitions(RERUN_STATUSES, Infinity).details.map((details) => details.partitionId);
  if (ids.length === 0) {
    throw new NothingToRerunError(
      run.numPartitions === 0 ? `Run "${runId}" has no partitions, so there is nothing to rerun` : `Run "${runId}" has nothing to rerun: all ${run.numPartitions} of its partitions are DONE`,
    );
  }

  const module = { module: start.module.url, exportName: start.module.exportName };
  const dpfOptions: DPFOptions = { stage: run.stageLocation };
  const sessionDatabase = options.sessionDatabase ?? recordedSessionDatabase(start.session);
  if (sessionDatabase !== undefined) dpfOptions.sessionDatabase = sessionDatabase;
  if (start.queue !== undefined) dpfOptions.queue = { url: options.queueUrl ?? start.queue.url, name: start.queue.name };
  const dpf = start.module.layer === undefined ? new DPF(module, dpfOptions) : DPF.layered(module, dpfOptions, start.module.layer);
  const common = {
    runId,
    partitionIds: ids,
    onExistingArtifacts: 'resume' as const,
    executionOptions: asExecutionOptions(start.options),
    ...(start.module.args !== undefined ? { args: start.module.args } : {}),
  };
  const input = run.input;
  if (input.mode === 'stage') return dpf.runFromStage({ ...common, stageLocation: input.location, filePattern: input.filePattern });
  return dpf.run({ ...common, partitionBy: input.partitionBy });
}

/**
 * The `sessionDatabase` option that names the database the run recorded: none for the stage's own
 * `dpf.duckdb` (or no database: what the stage's default gives), the file, or the URL without its password.
 */
function recordedSessionDatabase(session: SessionTarget | undefined): string | undefined {
  if (session === undefined || session.kind === 'none') return undefined;
  if (session.kind === 'duckdb') return session.inStage === true ? undefined : session.path;
  return session.url;
}

/** Recorded execution options as options to give again (the ones left unset stay unset). */
function asExecutionOptions(options: ResolvedExecutionOptions): ExecutionOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as ExecutionOptions;
}
