import { DuckDBSessionHost } from '../execute/duckdb-session-host.js';
import { DPFError, serializeError } from '../errors.js';
import type { PlannedInput } from '../plan/dataframe-partitions.js';
import { type AttemptReport, type ExecutionReporter, LocalExecutor } from '../execute/local-executor.js';
import type { PlannedPartition } from '../plan/partition.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { PartitionStatus, type RunStatus } from '../status.js';
import { type JournalRecord, JournalWriter } from './journal.js';
import type { RunLock } from './run-lock.js';
import type { RunSpec } from './run-spec.js';
import type { RunState } from './run-state.js';

/** How often the driver looks for a cancel request written by another process. */
const CANCEL_POLL_MS = 500;

/** What {@link RunDriver} needs to execute one generation of a run. */
export interface DriverPlan {
  stage: Stage;
  layout: RunLayout;
  spec: RunSpec;
  partitions: readonly PlannedPartition[];
  /** The state of the run before this generation (empty for a new run). */
  state: RunState;
  todo: readonly number[];
  generation: number;
  resumed: boolean;
  lock: RunLock;
  /** DataFrame mode, new run: the planned rows, written to the run's input while it runs. */
  input?: PlannedInput;
}

/**
 * Executes a run in this process: journals every transition, applies it to the run's state once
 * durable, notifies listeners, watches for cancel requests, and ends the run with its status.
 */
export class RunDriver {
  readonly state: RunState;
  readonly done: Promise<RunStatus>;
  private readonly journal: JournalWriter;
  private readonly executor: LocalExecutor;
  private readonly sessionHost: DuckDBSessionHost | undefined;
  private cancelPoll: NodeJS.Timeout | undefined;
  private readonly stopInput = new AbortController();

  constructor(
    private readonly plan: DriverPlan,
    onCommitted: (records: readonly JournalRecord[]) => void,
  ) {
    this.state = plan.state;
    this.journal = new JournalWriter(plan.stage, plan.layout.journal, (records) => {
      this.state.apply(records);
      onCommitted(records);
    });
    const previousAttempts = (index: number): number => this.state.partitions[index]?.attempts ?? 0;
    const session = plan.spec.session;
    this.sessionHost = session.kind === 'duckdb' ? new DuckDBSessionHost(session.path) : undefined;
    this.executor = new LocalExecutor(
      {
        stage: plan.stage,
        layout: plan.layout,
        module: plan.spec.module,
        options: plan.spec.executionOptions,
        partitions: plan.partitions,
        todo: plan.todo,
        previousAttempts,
        resumed: plan.resumed,
        session,
        sessionHost: this.sessionHost,
        writtenRows: plan.input === undefined ? undefined : 0,
      },
      this.reporter(),
    );
    this.done = this.execute();
    // The caller observes failures through wait(); never leave this promise unobserved.
    this.done.catch(() => undefined);
  }

  /** Stops the run; finished partitions keep their results. Resolves when the run has ended. */
  async cancel(): Promise<void> {
    if (!this.state.cancelRequested) {
      this.journal.record({ t: 'cancel', at: Date.now() });
      this.state.cancelRequested = true;
    }
    this.stopInput.abort();
    this.executor.stop('cancel');
    await this.done.catch(() => undefined);
  }

  private async execute(): Promise<RunStatus> {
    const { stage, layout, partitions, todo, generation, lock } = this.plan;
    try {
      lock.startHeartbeat();
      const at = Date.now();
      const scheduled = new Set(todo);
      this.state.partitions.forEach((partition, index) => {
        // A resumed run: what it runs again becomes PENDING; what an interrupted driver left
        // unfinished and this run does not take up becomes CANCELLED.
        if (scheduled.has(index)) {
          if (partition.status !== PartitionStatus.PENDING) {
            this.journal.record({ t: 'partition', i: index, s: PartitionStatus.PENDING, a: partition.attempts, at });
          }
        } else if (partition.status === PartitionStatus.PENDING || partition.status === PartitionStatus.RUNNING) {
          if (generation > 1) this.journal.record({ t: 'partition', i: index, s: PartitionStatus.CANCELLED, a: partition.attempts, at });
        }
      });
      this.journal.record({ t: 'start', generation, at, partitions: partitions.length, todo: todo.length });
      await this.journal.flush();
      this.cancelPoll = setInterval(() => {
        void stage.exists(layout.cancelRequest).then((requested) => (requested ? this.cancel() : undefined));
      }, CANCEL_POLL_MS);
      const writing = this.writeInput();
      await this.executor.run();
      // The input is completed even when the partitions asked for are done early: a later run
      // may resume or rerun others from it. (A cancel stops the writing.)
      await writing;
      await this.journal.flush();
      const status = this.state.finalStatus();
      this.journal.record({ t: 'end', generation, at: Date.now(), status });
      await this.journal.flush();
      return status;
    } finally {
      if (this.cancelPoll !== undefined) clearInterval(this.cancelPoll);
      await this.sessionHost?.close().catch(() => undefined);
      await stage.remove(layout.cancelRequest).catch(() => undefined);
      await lock.release().catch(() => undefined);
    }
  }

  /** Writes the planned rows to the run's input, releasing partitions as their rows land. */
  private async writeInput(): Promise<void> {
    const { input, stage, layout } = this.plan;
    if (input === undefined) return;
    try {
      await input.write(stage, layout.inputFolder, (rows) => this.executor.release(rows), this.stopInput.signal);
    } catch (error) {
      if (!this.stopInput.signal.aborted) this.executor.failHeld(serializeError(new DPFError(`writing the run's input failed: ${(error as Error).message}`, { cause: error })));
    } finally {
      await input.dispose();
    }
  }

  private reporter(): ExecutionReporter {
    const record = (index: number, report: AttemptReport): void => {
      const entry: JournalRecord = { t: 'partition', i: index, s: report.status, a: report.attempt, at: report.finishedAt, from: report.startedAt };
      if (report.numRows !== undefined) entry.rows = report.numRows;
      if (report.error !== undefined) entry.error = report.error;
      if (report.packed !== undefined) entry.packed = report.packed;
      this.journal.record(entry);
    };
    return {
      running: (indices, attempts, at) => this.journal.record({ t: 'running', i: indices, a: attempts, at }),
      retrying: record,
      finished: record,
    };
  }
}
