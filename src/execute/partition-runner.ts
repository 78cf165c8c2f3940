import { FileConnector } from '../data/file-connector.js';
import { InputReader } from '../data/input-segments.js';
import { RowsConnector } from '../data/rows-connector.js';
import type { TableConnector } from '../data/table-connector.js';
import { PartitionTimeoutError, serializeError } from '../errors.js';
import type { TaskDescriptor } from '../plan/partition.js';
import { restoreKey } from '../plan/partition-keys.js';
import { AttemptArtifacts, type PackedArtifactFinder } from '../stage/attempt-artifacts.js';
import { AttemptSession, type SessionProvider } from './attempt-session.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { beginCapture, endCapture, formatLogArguments, LogCapture } from './log-capture.js';
import type { PartitionContext, PartitionLog } from './partition-context.js';
import type { PartitionFunction } from './partition-module.js';
import type { TaskOutcome } from './protocol.js';

/** What a worker shares across the attempts it runs. */
export interface RunnerEnvironment {
  stage: Stage;
  layout: RunLayout;
  fn: PartitionFunction;
  timeoutMs: number | undefined;
  /** DataFrame mode: the run's planned input, shared by the worker's attempts (it caches segments). */
  input: InputReader;
  /** Where `context.withSession` opens each attempt's transaction. */
  sessions: SessionProvider;
  /** Pack small artifacts instead of writing files. */
  packArtifacts: boolean;
  /** Finds other runs' packed artifacts for `downloadFromStage`. */
  runIndexes: PackedArtifactFinder;
}

/** An attempt's outcome, and the small artifacts the worker packs before reporting it. */
export interface AttemptResult {
  outcome: TaskOutcome;
  packed: Array<{ name: string; bytes: Uint8Array }>;
}

/** What a worker needs to run attempts of one run. */
export function runnerEnvironment(
  stage: Stage,
  layout: RunLayout,
  fn: PartitionFunction,
  options: { timeoutMs: number | undefined; sessions: SessionProvider; packArtifacts: boolean; runIndexes: PackedArtifactFinder },
): RunnerEnvironment {
  return { stage, layout, fn, input: new InputReader(stage, layout.inputFolder), ...options };
}

/** Why an attempt was stopped from outside. */
export type StopReason = 'cancel' | 'fail-fast' | 'timeout' | 'crash';

/**
 * Runs one attempt of one partition inside a worker: builds its data connector and context,
 * captures its output, enforces its timeout and abort signal, then commits its artifacts and log.
 */
export class PartitionAttempt {
  /** Made when the function first looks at `context.signal`: most never do, and it costs. */
  private controller: AbortController | undefined;
  private readonly capture: LogCapture;
  private readonly artifacts: AttemptArtifacts;
  private readonly session: AttemptSession;
  private stopped: { reason: StopReason; error: unknown } | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly environment: RunnerEnvironment,
    readonly task: TaskDescriptor,
  ) {
    this.capture = new LogCapture(task.attempt);
    this.artifacts = new AttemptArtifacts(environment.stage, environment.layout, task.folder, task.attempt, environment.packArtifacts, environment.runIndexes);
    this.session = new AttemptSession(environment.sessions, `${task.index}:${task.attempt}`);
  }

  /** The path of the partition's log, for output written as the worker dies. */
  get logPath(): string {
    return this.environment.layout.partitionLog(this.task.folder);
  }

  get logCapture(): LogCapture {
    return this.capture;
  }

  /** Ends the attempt from outside: its signal fires and it resolves at once with the reason. */
  stop(reason: StopReason, error: unknown): void {
    if (this.stopped !== undefined) return;
    this.stopped = { reason, error };
    this.controller?.abort(error);
    this.wake?.();
  }

  async run(): Promise<AttemptResult> {
    const startedAt = Date.now();
    const connector = this.connector();
    const timer =
      this.environment.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            this.stop('timeout', new PartitionTimeoutError(`partition "${this.task.id}" ran longer than timeoutMs (${this.environment.timeoutMs} ms)`));
          }, this.environment.timeoutMs);
    beginCapture(this.capture);
    let error: unknown;
    try {
      const stoppedFromOutside = new Promise<void>((resolve) => {
        this.wake = resolve;
        if (this.stopped !== undefined) resolve();
      });
      const call = Promise.resolve().then(() => this.environment.fn(connector, this.context()));
      call.catch(() => undefined);
      await Promise.race([call, stoppedFromOutside]);
      if (this.stopped !== undefined) throw this.stopped.error;
    } catch (thrown) {
      error = this.stopped?.error ?? thrown;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      endCapture();
    }
    let status: TaskOutcome['status'] = 'DONE';
    if (error === undefined) {
      try {
        // The database first: if its commit fails, the attempt fails and leaves no artifact.
        await this.session.end(true);
        await this.artifacts.commit(this.task.clearFolder);
      } catch (commitError) {
        error = commitError;
      }
    }
    if (error !== undefined) {
      await this.session.end(false).catch(() => undefined);
      await this.artifacts.discard();
      status = this.stopped?.reason === 'cancel' || this.stopped?.reason === 'fail-fast' ? 'CANCELLED' : 'FAILED';
      this.capture.write('log', `${status === 'CANCELLED' ? 'cancelled' : 'failed'}: ${describeError(error)}`);
    }
    await this.writeLog();
    const outcome: TaskOutcome = { index: this.task.index, attempt: this.task.attempt, status, startedAt, finishedAt: Date.now() };
    const rows = connector.rowsRead;
    if (rows !== undefined) outcome.numRows = rows;
    if (error !== undefined) outcome.error = serializeError(error);
    if (this.stopped !== undefined) outcome.orphaned = true;
    return { outcome, packed: error === undefined ? this.artifacts.takePacked() : [] };
  }

  private connector(): TableConnector {
    const { input } = this.task;
    return input.kind === 'file' ? new FileConnector(input.path) : new RowsConnector(this.environment.input, input.start, input.rows);
  }

  private async writeLog(): Promise<void> {
    const text = this.capture.text();
    if (text !== '') await this.environment.stage.append(this.logPath, text);
  }

  private signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.stopped !== undefined && !this.controller.signal.aborted) this.controller.abort(this.stopped.error);
    return this.controller.signal;
  }

  private context(): PartitionContext {
    const { task, artifacts, capture, session } = this;
    const log = ((...args: unknown[]) => capture.write('log', formatLogArguments(args))) as PartitionLog;
    log.info = log;
    log.warn = (...args: unknown[]) => capture.write('log', `WARN ${formatLogArguments(args)}`);
    log.error = (...args: unknown[]) => capture.write('log', `ERROR ${formatLogArguments(args)}`);
    const signal = (): AbortSignal => this.signal();
    return {
      partitionId: task.id,
      get signal(): AbortSignal {
        return signal();
      },
      partitionKey: task.key === undefined ? task.id : restoreKey(task.key),
      runId: this.environment.layout.runId,
      attempt: task.attempt,
      log,
      uploadToStage: (value, filename, options) => artifacts.upload(value, filename, options?.writeFunction),
      downloadFromStage: (filename, options) => artifacts.download(filename, options?.stagePath, options?.readFunction),
      withSession: (fn) => session.withSession(fn),
    };
  }
}



function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return formatLogArguments([error]);
}
