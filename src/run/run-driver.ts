import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DPFError, DriverHandedOverError, serializeError, StageError } from '../errors.js';
import { localWorkerCount } from '../execution-options.js';
import type { Executor } from '../execute/executor.js';
import { LocalPool } from '../execute/local-pool.js';
import type { QueueExecutor } from '../execute/queue/queue-executor.js';
import { storedSessionTarget } from '../execute/session-url.js';
import type { DriverSessions } from '../execute/open-session-ledger.js';
import { type AttemptReport, type ExecutionReporter, RunPolicy } from '../execute/run-policy.js';
import type { JournalRecord, PartitionRecord } from '../model/journal.js';
import { DRIVER_HANDED_OVER } from '../model/lease.js';
import type { PlannedPartition } from '../model/partition.js';
import type { RunSpec, SessionTarget } from '../model/run-spec.js';
import type { PlannedInput } from '../plan/dataframe-partitions.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import type { RunStatus } from '../status.js';
import { JournalWriter } from './journal.js';
import type { RunLease } from './lease.js';
import type { RunState } from './run-state.js';
import { clearPartitionFolder } from './unrecorded-files.js';

/** How often the driver looks for a cancel request written by another process. */
const CANCEL_POLL_MS = 500;
/**
 * Records wait at most this long before their journal segment is written: a segment is one
 * request on an object store, so a remote stage gathers more records per segment.
 */
const JOURNAL_INTERVAL_MS = { local: 50, remote: 250 };
/** The driver writes a checkpoint of the run's state after every this many journal segments. */
const CHECKPOINT_EVERY = 500;

/** What {@link RunDriver} needs to execute a run it has taken (its start record is in the journal). */
export interface DriverPlan {
  stage: Stage;
  layout: RunLayout;
  spec: RunSpec;
  partitions: readonly PlannedPartition[];
  /** The run's state, with this driver's start record applied. */
  state: RunState;
  todo: readonly number[];
  lease: RunLease;
  /** The journal's next free slot. */
  seq: number;
  /** Where `context.withSession` connects, with credentials (in memory only). */
  session: SessionTarget;
  sessions: DriverSessions;
  /** DataFrame mode, new run: the planned rows, written to the run's input while it runs. */
  input?: PlannedInput | undefined;
  /** A queue run this process drives: its partitions go through this queue (queue-executor.ts), not this machine's pool. */
  queue?: { url: string; name: string; Executor: typeof QueueExecutor } | undefined;
}

/**
 * Executes a run in this process under its lease: journals every transition, applies it to the
 * run's state once durable, notifies listeners, watches for cancel requests, and ends the run
 * with its status. A failed journal write or a lost lease stops the run at once: its workers are
 * stopped, nothing more is committed, and `done` rejects with the error (naming the file).
 */
export class RunDriver {
  readonly state: RunState;
  readonly done: Promise<RunStatus>;
  private readonly journal: JournalWriter;
  private readonly policy: RunPolicy;
  private cancelPoll: NodeJS.Timeout | undefined;
  private readonly stopInput = new AbortController();
  private failure: Error | undefined;
  private readonly scratch: string;

  constructor(
    private readonly plan: DriverPlan,
    /** Hears each batch of records once it is durable and applied, with the partition changes it made. */
    onCommitted: (records: readonly JournalRecord[], changes: readonly PartitionRecord[]) => void,
  ) {
    this.state = plan.state;
    const { stage, layout, spec, lease } = plan;
    this.scratch = join(stage.scratchFolder, 'runs', `${spec.runId}-${lease.owner}`);
    this.journal = new JournalWriter(
      stage,
      layout,
      { run: spec.uid, epoch: lease.epoch, writer: lease.owner },
      plan.seq,
      {
        onCommitted: (records) => {
          const changes: PartitionRecord[] = [];
          this.state.apply(records, (_, change) => changes.push(change));
          onCommitted(records, changes);
          this.checkpoint();
        },
        onFailed: (error) => this.fail(error),
        assertOwner: () => lease.assertHeld(),
      },
      stage.local ? JOURNAL_INTERVAL_MS.local : JOURNAL_INTERVAL_MS.remote,
    );
    const previousAttempts = (index: number): number => this.state.partitions[index]?.attempts ?? 0;
    const options = this.state.start!.options!;
    const module = this.state.start!.module!;
    const inputFolder = this.state.start!.input === undefined ? undefined : layout.inputFolder(this.state.start!.input);
    const executor: Executor = plan.queue !== undefined
      ? new plan.queue.Executor(
          {
            stage: stage.location,
            caseInsensitive: stage.caseInsensitive,
            runId: spec.runId,
            uid: spec.uid,
            epoch: lease.epoch,
            tokenPrefix: lease.owner,
            partitionList: this.state.start!.list,
            inputFolder,
            module,
            // Without credentials: every worker's own PGPASSWORD or ~/.pgpass supplies the password.
            session: storedSessionTarget(plan.session),
            options,
          },
          plan.queue,
        )
      : new LocalPool({
      stage,
      layout,
      partitions: plan.partitions,
      module,
      options,
      workers: Math.min(localWorkerCount(options), plan.todo.length),
      runUid: spec.uid,
      epoch: lease.epoch,
      tokenPrefix: lease.owner,
      partitionList: this.state.start!.list,
      inputFolder,
      scratch: this.scratch,
      session: plan.session,
      sessionHost: plan.sessions.host,
    });
    this.policy = new RunPolicy(
      {
        stage,
        options,
        partitions: plan.partitions,
        todo: plan.todo,
        previousAttempts,
        runUid: spec.uid,
        ledger: plan.sessions.ledger,
        writtenRows: plan.input === undefined ? undefined : 0,
        clearUnrecorded: (index, keep) => clearPartitionFolder(stage, layout, plan.partitions, this.state, index, keep),
      },
      this.reporter(),
      executor,
    );
    this.done = this.execute();
    // The caller observes failures through wait(); never leave this promise unobserved.
    this.done.catch(() => undefined);
  }

  /** Stops the run; finished partitions keep their results. Resolves when the run has ended. */
  async cancel(): Promise<void> {
    if (!this.state.cancelRequested && this.failure === undefined) {
      this.journal.record({ t: 'cancel', at: Date.now() });
      this.state.cancelRequested = true;
    }
    this.stopInput.abort();
    this.policy.stop('cancel');
    await this.done.catch(() => undefined);
  }

  private async execute(): Promise<RunStatus> {
    const { stage, layout, lease } = this.plan;
    try {
      lease.whenLost((error) => this.fail(error));
      this.cancelPoll = setInterval(() => {
        void stage.head(layout.cancelRequest).then(
          (requested) => (requested !== undefined ? this.cancel() : undefined),
          () => undefined,
        );
      }, CANCEL_POLL_MS);
      const writing = this.writeInput();
      await this.policy.run();
      // Handed over (or failed): the run does not end here.
      if (this.failure !== undefined) throw this.failure;
      // The input is completed even when the partitions asked for are done early: a later run
      // may resume or rerun others from it. (A cancel stops the writing.)
      await writing;
      await this.journal.flush();
      const status = this.state.finalStatus();
      this.journal.record({ t: 'end', epoch: lease.epoch, at: Date.now(), status });
      await this.journal.flush();
      // Running attempts' log tails (execute/live-log.ts) are of no use once nothing runs.
      await stage.deletePrefix(layout.liveLogFolder).catch(() => undefined);
      return status;
    } catch (error) {
      throw this.failure ?? error;
    } finally {
      if (this.cancelPoll !== undefined) clearInterval(this.cancelPoll);
      await this.plan.sessions.close().catch(() => undefined);
      if (this.failure === undefined) await stage.delete(layout.cancelRequest).catch(() => undefined);
      await rm(this.scratch, { recursive: true, force: true }).catch(() => undefined);
      await lease.release(this.failure?.message).catch(() => undefined);
    }
  }

  /**
   * A queue run's driver whose worker is leaving: stops driving without ending the run, so that
   * the next driver takes it on at once. What happened so far is made durable; nothing more is
   * written; the partitions' jobs keep running on the queue (the next driver, at a newer epoch,
   * settles them); the lease is released with DRIVER_HANDED_OVER. Resolves once stopped.
   */
  async handOver(): Promise<void> {
    if (this.failure !== undefined) return;
    await this.journal.flush().catch(() => undefined);
    if (this.failure !== undefined) return;
    this.failure = new DriverHandedOverError(DRIVER_HANDED_OVER);
    this.journal.fail(this.failure);
    this.stopInput.abort();
    this.policy.detach();
    await this.done.catch(() => undefined);
  }

  /** Stops the run on a failed state write or a lost lease: no more commits, workers stopped. */
  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.journal.fail(error);
    this.stopInput.abort();
    this.policy.stop('cancel');
  }

  /** Writes the state as a checkpoint now and then, so readers of a long run need not read every segment. */
  private checkpoint(): void {
    const seq = this.journal.nextSeq - 1;
    if ((seq + 1) % CHECKPOINT_EVERY !== 0) return;
    const { stage, layout, spec } = this.plan;
    const checkpoint = this.state.checkpoint(spec.uid, seq);
    // Only a shortcut for readers: the journal is complete without it.
    void stage.create(layout.checkpoint(seq), JSON.stringify(checkpoint)).catch(() => undefined);
  }

  /** Writes the planned rows to the run's input, releasing partitions as their rows land. */
  private async writeInput(): Promise<void> {
    const { input, stage, layout } = this.plan;
    if (input === undefined) return;
    try {
      await input.write(stage, layout.inputFolder(this.state.start!.input!), (rows) => this.policy.release(rows), this.stopInput.signal);
    } catch (error) {
      if (!this.stopInput.signal.aborted) this.policy.failHeld(serializeError(new DPFError(`writing the run's input failed: ${(error as Error).message}`, { cause: error })));
    } finally {
      await input.dispose();
    }
  }

  private reporter(): ExecutionReporter {
    const record = (index: number, report: AttemptReport): void => {
      const entry: PartitionRecord = { t: 'partition', i: index, s: report.status, a: report.attempt, at: report.finishedAt, from: report.startedAt };
      if (report.token !== undefined) entry.k = report.token;
      else if (report.dispatch !== undefined) entry.d = report.dispatch;
      if (report.numRows !== undefined) entry.rows = report.numRows;
      if (report.error !== undefined) entry.error = report.error;
      if (report.artifacts !== undefined && report.status === 'DONE') entry.art = report.artifacts;
      if (report.logs !== undefined && report.logs.length > 0) entry.log = report.logs;
      if (report.adopted === true) entry.adopted = true;
      this.journal.record(entry);
    };
    return {
      running: (indices, attempts, dispatches, at, worker) => this.journal.record({ t: 'running', i: indices, a: attempts, d: dispatches, at, w: worker }),
      retrying: record,
      finished: record,
      note: (message) => this.journal.record({ t: 'note', at: Date.now(), message }),
      stageFailed: (error) => {
        const failure = new StageError(error.message.match(/^\S+ (\S+) failed/)?.[1] ?? this.plan.stage.location, error.message);
        if (error.stack !== undefined) failure.stack = error.stack;
        this.fail(failure);
      },
    };
  }
}
