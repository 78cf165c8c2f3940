import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FileConnector } from '../data/file-connector.js';
import { InputReader } from '../data/input-segments.js';
import { RowsConnector } from '../data/rows-connector.js';
import type { TableConnector } from '../data/table-connector.js';
import { PartitionTimeoutError, serializeError, UnawaitedCallError } from '../errors.js';
import { attemptToken } from '../model/journal.js';
import type { ArtifactRef, CommittedAttempt, LogRef } from '../model/refs.js';
import type { TaskDescriptor } from '../plan/partition.js';
import { restoreKey } from '../plan/partition-keys.js';
import { PACK_LIMIT_BYTES, type PackWriter } from '../stage/artifact-pack.js';
import { type ArtifactFinder, AttemptArtifacts } from '../stage/attempt-artifacts.js';
import { refsPresent } from '../stage/stored-ref.js';
import { PARTITION_LOG, type RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { AttemptSession, type SessionProvider } from './attempt-session.js';
import { downloadSource } from './download-source.js';
import { LiveLog } from './live-log.js';
import { beginCapture, type CapturedLog, endCapture, formatLogArguments, LogCapture } from './log-capture.js';
import type { PartitionContext, PartitionLog } from './partition-context.js';
import type { PartitionFunction } from './partition-module.js';
import type { TaskOutcome } from './protocol.js';

/** What a worker shares across the attempts it runs. */
export interface RunnerEnvironment {
  stage: Stage;
  layout: RunLayout;
  fn: PartitionFunction;
  /** The run's `args` (frozen), given to every attempt as `context.args`. */
  args: unknown;
  timeoutMs: number | undefined;
  /** The run's uid and the driver's epoch, recorded with session commits. */
  runUid: string;
  epoch: number;
  /** DataFrame mode: the run's planned input, shared by the worker's attempts (it caches segments). */
  input: InputReader | undefined;
  /** Where `context.withSession` opens each attempt's transaction; undefined when the run has no session database. */
  sessions: SessionProvider | undefined;
  /** Pack small artifacts instead of writing files. */
  packArtifacts: boolean;
  /** The worker's packs (an attempt with a session writes its own before it commits). */
  packs: PackWriter;
  /** Finds other runs' artifacts for `downloadFromStage`. */
  finder: ArtifactFinder;
  /** A local folder for the attempts' files in transit. */
  scratch: string;
  /** Where each attempt's log spools beyond what memory holds, as `{token}.log` (the driver reads it when the worker dies). */
  spool: string;
  /** The most log an attempt keeps (ExecutionOptions.maxLogBytes). */
  maxLogBytes: number;
}

/** Bytes an outcome waits for: its small artifacts and its log, packed by the worker before it is reported. */
export interface PackItem {
  /** An artifact's name, or undefined for the attempt's log. */
  name: string | undefined;
  bytes: Uint8Array;
}

/** An attempt's outcome, and what the worker packs before reporting it. */
export interface AttemptResult {
  outcome: TaskOutcome;
  packed: PackItem[];
}

/** What a worker needs to run attempts of one run. */
export function runnerEnvironment(options: Omit<RunnerEnvironment, 'input'> & { inputFolder: string | undefined }): RunnerEnvironment {
  const { inputFolder, ...rest } = options;
  return { ...rest, input: inputFolder === undefined ? undefined : new InputReader(options.stage, inputFolder) };
}

/** Why an attempt was stopped from outside. */
export type StopReason = 'cancel' | 'fail-fast' | 'timeout' | 'crash';

/**
 * Runs one attempt of one partition inside a worker: builds its data connector and context,
 * captures its output, enforces its timeout and abort signal, then commits, in this order:
 * its files to the stage (under names no other attempt can take over), the session database (its
 * rows with its ledger entry — when the attempt wrote through `withSession`), then its outcome to
 * the driver, which records it in the journal. Until that record, nothing of it is part of the run.
 */
export class PartitionAttempt {
  /** Made when the function first looks at `context.signal`: most never do, and it costs. */
  private controller: AbortController | undefined;
  private readonly capture: LogCapture;
  /** Made when the function first uploads or downloads (a tiny partition's attempt costs less without). */
  private uploads: AttemptArtifacts | undefined;
  private transaction: AttemptSession | undefined;
  private stopped: { reason: StopReason; error: unknown } | undefined;
  private wake: (() => void) | undefined;
  private committingSession = false;
  private tokenText: string | undefined;
  /** Uploads and sessions the function started and that have not settled (each says what it is). */
  private readonly inFlight = new Set<Promise<{ what: string; error: unknown } | undefined>>();
  /** The function returned (and its calls settled), or was stopped: it may upload nothing more. */
  private ended = false;

  constructor(
    private readonly environment: RunnerEnvironment,
    readonly task: TaskDescriptor,
  ) {
    this.capture = new LogCapture(task.attempt, environment.maxLogBytes, () => join(environment.spool, `${this.token}.log`));
  }

  private get artifacts(): AttemptArtifacts {
    const { environment, task } = this;
    if (this.uploads === undefined) {
      this.uploads = new AttemptArtifacts(environment.stage, environment.layout, task.folder, this.token, environment.scratch, environment.packArtifacts, environment.finder);
      // First used by a callback that outlived the function: it may upload nothing.
      if (this.ended) this.uploads.end();
    }
    return this.uploads;
  }

  private get session(): AttemptSession {
    this.transaction ??= new AttemptSession(this.environment.sessions, this.token);
    return this.transaction;
  }

  /** The attempt's token (see TaskDescriptor.owner), made when first needed. */
  get token(): string {
    this.tokenText ??= attemptToken(this.task.owner, this.task.dispatch);
    return this.tokenText;
  }

  /** Ends the attempt from outside: its signal fires and it resolves at once with the reason. False: it was stopped already. */
  stop(reason: StopReason, error: unknown): boolean {
    if (this.stopped !== undefined) return false;
    this.stopped = { reason, error };
    this.controller?.abort(error);
    this.wake?.();
    return true;
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
    const live = new LiveLog(this.environment.stage, this.environment.layout.liveLog(this.token), this.capture);
    let error: unknown;
    try {
      const stoppedFromOutside = new Promise<void>((resolve) => {
        this.wake = resolve;
        if (this.stopped !== undefined) resolve();
      });
      const call = Promise.resolve().then(() => this.environment.fn(connector, this.context()));
      call.catch(() => undefined);
      await Promise.race([call, stoppedFromOutside]);
      this.throwIfStopped();
      // Calls it did not await (a missing `await`) still count: the attempt waits for them.
      if (this.inFlight.size > 0) {
        await Promise.race([this.settleInFlight(), stoppedFromOutside]);
        this.throwIfStopped();
      }
    } catch (thrown) {
      error = this.stopped?.error ?? thrown;
    } finally {
      this.ended = true;
      this.uploads?.end();
      if (timer !== undefined) clearTimeout(timer);
      endCapture();
      await live.stop();
    }
    const outcome: TaskOutcome = { index: this.task.index, attempt: this.task.attempt, dispatch: this.task.dispatch, status: 'DONE', startedAt, finishedAt: 0 };
    const rows = connector.rowsRead;
    if (rows !== undefined) outcome.numRows = rows;
    let packed: PackItem[] = [];
    if (error === undefined) {
      try {
        packed = await this.commit(outcome);
        // Without a session the log is stored now: an attempt whose log cannot be written fails.
        if (outcome.logs === undefined) packed.push(...(await this.endLog(outcome)));
      } catch (commitError) {
        error = commitError;
      }
    }
    if (error !== undefined) {
      await this.transaction?.rollback().catch(() => undefined);
      // Files it stored must not keep their names from the next attempt — unless a session commit
      // was under way, which may have committed a ledger entry that refers to them. One the
      // database refused because a newer driver took the run (LeaseLostError, from the ledger's
      // epoch check before anything is written) committed nothing: its files go too.
      if (!this.committingSession || (error as Error | undefined)?.name === 'LeaseLostError') await this.uploads?.unstore();
      outcome.status = this.stopped?.reason === 'cancel' || this.stopped?.reason === 'fail-fast' ? 'CANCELLED' : 'FAILED';
      outcome.error = serializeError(error);
      delete outcome.artifacts;
      // Log pieces already stored stay (their objects exist); the rest, and why it failed, follow.
      const stored = outcome.logs;
      delete outcome.logs;
      this.capture.write('log', `${outcome.status === 'CANCELLED' ? 'cancelled' : 'failed'}: ${describeError(error)}`);
      // The log of an attempt that failed is kept when it can be; its error says why it failed.
      packed = await this.endLog(outcome).catch(() => []);
      if (stored !== undefined) outcome.logs = [...stored, ...(outcome.logs ?? [])];
    }
    if (this.uploads !== undefined) await this.uploads.discard();
    if (connector instanceof FileConnector) await connector.dispose();
    if (this.stopped !== undefined) outcome.orphaned = true;
    outcome.finishedAt = Date.now();
    return { outcome, packed };
  }

  private throwIfStopped(): void {
    if (this.stopped !== undefined) throw this.stopped.error;
  }

  /**
   * Keeps a call of the function's (`uploadToStage`, `withSession`) in {@link PartitionAttempt.inFlight}
   * until it settles. The caller gets a promise of its own, so a forgotten call that fails while the
   * function runs is still an unhandled rejection, which fails the attempt.
   */
  private track<T>(what: string, work: Promise<T>): Promise<T> {
    const settled = work.then(
      () => undefined,
      (error: unknown) => {
        // A call of an attempt that already ended (it timed out, or was stopped) fails with it:
        // its outcome says why; the error must not be blamed on the partition running next.
        if (this.ended && typeof error === 'object' && error !== null) reported.add(error);
        return { what, error };
      },
    );
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return work.then((value) => value);
  }

  /**
   * Waits for the calls still running when the function returned. One that fails fails the
   * attempt, naming the call: the function returned before it could see the error.
   */
  private async settleInFlight(): Promise<void> {
    while (this.inFlight.size > 0) {
      for (const failure of await Promise.all([...this.inFlight])) {
        if (failure === undefined) continue;
        reported.add(failure.error as object);
        throw new UnawaitedCallError(
          `${failure.what} was still running when partition "${this.task.id}"'s function returned, and then failed: ${(failure.error as Error)?.message ?? String(failure.error)}. ` +
            'Await every uploadToStage and withSession inside the function, so it sees such errors itself',
          { cause: failure.error },
        );
      }
    }
  }

  /**
   * Ends the attempt's log: a small one rides in the worker's next pack (returned), a larger one
   * — or one spooled to a file — is its own object in the attempt's folder (set in `outcome.logs`).
   */
  private async endLog(outcome: TaskOutcome): Promise<PackItem[]> {
    const log = this.capture.finish();
    if ('bytes' in log && log.bytes.byteLength <= PACK_LIMIT_BYTES) return log.bytes.byteLength === 0 ? [] : [{ name: undefined, bytes: log.bytes }];
    outcome.logs = [await this.storeLog(log)];
    return [];
  }

  /**
   * Stores the files and, when the attempt wrote through a session, its small artifacts and log
   * too, then commits the session with the ledger entry: an attempt of the partition that
   * committed first is adopted instead. Returns what is left for the worker's pack.
   */
  private async commit(outcome: TaskOutcome): Promise<PackItem[]> {
    if (this.uploads === undefined && this.transaction?.opened !== true) return [];
    outcome.artifacts = await this.artifacts.store();
    const small: PackItem[] = this.artifacts.takePacked();
    if (this.transaction?.opened !== true) return small;
    // The log goes with the artifacts: the ledger entry must name everything the attempt kept.
    const items = [...small, ...(await this.endLog(outcome))];
    const logs: LogRef[] = outcome.logs ?? [];
    if (items.length > 0) {
      const { key, offsets, crcs } = await this.environment.packs.write(items.map((item) => item.bytes));
      items.forEach((item, i) => {
        const ref = { key, offset: offsets[i]!, length: item.bytes.byteLength, crc: crcs[i]! };
        if (item.name === undefined) logs.push({ attempt: this.task.attempt, ...ref });
        else outcome.artifacts!.push({ name: item.name, ...ref });
      });
    }
    outcome.logs = logs;
    const entry: CommittedAttempt = {
      attempt: this.task.attempt,
      token: this.token,
      artifacts: outcome.artifacts,
      logs,
      startedAt: outcome.startedAt,
      finishedAt: Date.now(),
      ...(outcome.numRows !== undefined ? { numRows: outcome.numRows } : {}),
    };
    this.committingSession = true;
    const result = await this.transaction.commit({ runUid: this.environment.runUid, epoch: this.environment.epoch, partition: this.task.index, partitionId: this.task.id, entry });
    if (result !== undefined && 'adopted' in result) {
      const adopted = result.adopted;
      if (await refsPresent(this.environment.stage, [...adopted.artifacts, ...adopted.logs])) {
        // The partition's rows and artifacts are that earlier attempt's; this one's are dropped.
        outcome.adopted = true;
        outcome.token = adopted.token;
        outcome.artifacts = adopted.artifacts as ArtifactRef[];
        outcome.logs = [...adopted.logs, ...logs];
        if (adopted.numRows !== undefined) outcome.numRows = adopted.numRows;
      }
      // Else its artifacts are gone from the stage (this is the re-run that replaces them): the
      // rows stay the committed attempt's, the artifacts are this attempt's.
    }
    return [];
  }

  private async storeLog(log: CapturedLog): Promise<LogRef> {
    const key = this.environment.layout.attemptFile(this.task.folder, this.token, PARTITION_LOG);
    if ('bytes' in log) {
      await this.environment.stage.put(key, log.bytes);
      return { attempt: this.task.attempt, key, length: log.bytes.byteLength };
    }
    await this.environment.stage.put(key, { file: log.file });
    await rm(log.file, { force: true });
    return { attempt: this.task.attempt, key, length: log.length };
  }

  private connector(): TableConnector {
    const { input } = this.task;
    return input.kind === 'file'
      ? new FileConnector(input.path, this.environment.scratch)
      : new RowsConnector(this.environment.input!, input.start, input.rows, this.task.id);
  }

  private signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.stopped !== undefined && !this.controller.signal.aborted) this.controller.abort(this.stopped.error);
    return this.controller.signal;
  }

  private context(): PartitionContext {
    const { task, capture } = this;
    const log = ((...args: unknown[]) => capture.write('log', formatLogArguments(args))) as PartitionLog;
    log.info = log;
    log.warn = (...args: unknown[]) => capture.write('log', `WARN ${formatLogArguments(args)}`);
    log.error = (...args: unknown[]) => capture.write('log', `ERROR ${formatLogArguments(args)}`);
    const signal = (): AbortSignal => this.signal();
    return {
      args: this.environment.args,
      partitionId: task.id,
      get signal(): AbortSignal {
        return signal();
      },
      partitionKey: task.key === undefined ? task.id : restoreKey(task.key),
      runId: this.environment.layout.runId,
      attempt: task.attempt,
      log,
      uploadToStage: (value, filename, options) => this.track(`uploadToStage("${String(filename)}")`, this.artifacts.upload(value, filename, options?.writeFunction)),
      downloadFromStage: async (filename, options) => this.artifacts.download(filename, downloadSource(options, { runId: this.environment.layout.runId, partitionId: task.id }), options?.readFunction),
      withSession: (fn) => this.track('withSession', this.session.withSession(fn)),
    };
  }
}

/**
 * Errors an attempt already failed with because of a call it did not await: the same error
 * reaching the worker as an unhandled rejection is not blamed on anything a second time.
 */
const reported = new WeakSet<object>();

/** Whether an unhandled rejection's reason is an error an attempt already failed with (see `reported`). */
export function alreadyReported(reason: unknown): boolean {
  return typeof reason === 'object' && reason !== null && reported.has(reason);
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return formatLogArguments([error]);
}
