import { EventEmitter, on } from 'node:events';
import { hostname } from 'node:os';
import type { QueueTarget } from '../model/queue-job.js';
import type { Table } from 'apache-arrow';
import { setTimeout as sleep } from 'node:timers/promises';
import { readInputManifest } from '../data/input-segments.js';
import { RunAbandonedError, RunNotFoundError } from '../errors.js';
import { DRIVER_HANDED_OVER, SUBMITTED_NOTE } from '../model/lease.js';
import type { JournalRecord, PartitionRecord, StartRecord } from '../model/journal.js';
import type { PlannedPartition } from '../model/partition.js';
import type { ModuleReference } from '../model/run-spec.js';
import { openStage } from '../stage/open-stage.js';
import { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { finishedRunStatus, PARTITION_STATUSES, PartitionStatus, RunStatus } from '../status.js';
import { AttemptTimelineReader } from './attempt-timeline.js';
import { describeHolder, type LeaseHolder, readLease, RunLease } from './lease.js';
import { PartitionDetails, type SinglePartitionDetails } from './partition-details.js';
import { interruptHandled, stopOnInterrupt } from './interrupt.js';
import { ProgressBar } from './progress-bar.js';
import type { RunDriver } from './run-driver.js';
import { RunFollower } from './run-follower.js';
import { type DataFrameInput, readRunSpec, type RunSpec, type StageInput } from './run-spec.js';
import type { PartitionEvent, PartitionState, RunState } from './run-state.js';

/** Options of {@link DPFRun.wait}. */
export interface WaitOptions {
  /**
   * Draw a progress bar on stderr while waiting (redrawn in place on a terminal; a line per 10%
   * otherwise).
   * @defaultValue true when stderr is a terminal
   */
  showProgress?: boolean;
  /** Stops waiting (the run goes on) when aborted. */
  signal?: AbortSignal;
}

/** Partition details grouped by status: what {@link DPFRun.getProgress} returns. */
export type RunProgress = Record<PartitionStatus, SinglePartitionDetails[]>;

/** Starts the driver of a live run, given where to report what it commits. */
type DriverFactory = (onCommitted: (records: readonly JournalRecord[], changes: readonly PartitionRecord[]) => void) => RunDriver;

/** How often a restored run reads the journal while someone waits on it. */
const POLL_MS = 250;

/**
 * A handle on a run: the one started by `dpf.run()` / `dpf.runFromStage()` in this process, or
 * one restored from the stage with {@link DPFRun.restoreFrom} by any process, during or after the
 * run. Everything it reports comes from the run's durable state on the stage.
 *
 * Emits `'partition'` ({@link PartitionEvent}) on every partition transition and `'end'`
 * ({@link RunStatus}) when the run ends.
 *
 * @example
 * ```ts
 * const run = await dpf.runFromStage({ stageLocation: './input', runId: 'convert' });
 * run.on('partition', (event) => console.log(event.partitionId, event.status));
 * const status = await run.wait({ showProgress: true });
 * const failed = (await run.getProgress()).FAILED.map((details) => details.partitionId);
 * ```
 */
export class DPFRun extends EventEmitter<{ partition: [PartitionEvent]; end: [RunStatus] }> {
  private readonly layout: RunLayout;
  private polling: Promise<void> | undefined;
  private readonly driver: RunDriver | undefined;
  private readonly livePartitions: readonly PlannedPartition[] = [];
  private readonly liveState: RunState | undefined;
  /** The run this process drives: its driver stopped on an error before the run ended. */
  private driverFailed = false;
  /** A restored run: its driver's lease when the journal was last read. */
  private leaseHolder: LeaseHolder | undefined;

  private constructor(
    readonly runId: string,
    private readonly stage: Stage,
    private readonly spec: RunSpec,
    /** How a restored handle reads the run; undefined for the run this process drives. */
    private readonly follower: RunFollower | undefined,
    live: { partitions: readonly PlannedPartition[]; state: RunState; attach: DriverFactory } | undefined,
  ) {
    super();
    this.layout = new RunLayout(runId);
    if (live !== undefined) {
      this.livePartitions = live.partitions;
      this.liveState = live.state;
      this.driver = live.attach((records, changes) => this.emitTransitions(records, changes));
      // 'end' once the driver is done with the stage too (its lease released), not at its last record.
      this.driver.done.then(
        (status) => this.emit('end', status),
        () => (this.driverFailed = true),
      );
    } else {
      (this as EventEmitter).on('newListener', (event: string) => {
        if (event === 'partition' || event === 'end') void this.follow().catch(() => undefined);
      });
    }
  }

  /** @internal A handle on a run this process executes. */
  static live(stage: Stage, spec: RunSpec, partitions: readonly PlannedPartition[], state: RunState, attach: DriverFactory): DPFRun {
    return new DPFRun(spec.runId, stage, spec, undefined, { partitions, state, attach });
  }

  private get state(): RunState {
    return this.follower?.state ?? this.liveState!;
  }

  private get partitions(): readonly PlannedPartition[] {
    return this.follower?.partitions ?? this.livePartitions;
  }

  /**
   * A handle on a run stored on a stage, from any process: during the run (to watch, wait for or
   * cancel it) or after it (to inspect results and logs).
   *
   * @example
   * ```ts
   * const run = await DPFRun.restoreFrom('sales-by-region', './stage');
   * console.log(run.status, (await run.getProgress()).FAILED.length);
   * ```
   */
  static async restoreFrom(runId: string, stage: string | URL): Promise<DPFRun> {
    const opened = await openStage(stage, { create: false });
    const layout = new RunLayout(runId);
    const spec = opened === undefined ? undefined : await readRunSpec(opened, layout);
    if (opened === undefined || spec === undefined) {
      throw new RunNotFoundError(`No run "${runId}" on the stage ${String(stage)}; check the runId and the stage location`);
    }
    return DPFRun.follow(opened, spec);
  }

  /** @internal A handle on a run another process executes (or will: a run submitted to a queue). */
  static async follow(stage: Stage, spec: RunSpec): Promise<DPFRun> {
    const layout = new RunLayout(spec.runId);
    // The lease before the journal (see refresh).
    const lease = await readHolder(stage, layout);
    const follower = await RunFollower.load(stage, layout, spec);
    const run = new DPFRun(spec.runId, stage, spec, follower, undefined);
    await run.noteLease(lease);
    return run;
  }

  /**
   * The run's status when last observed (a restored run observes on every method call). A run
   * whose driver is gone before it ended stays `IN_PROGRESS`: see {@link DPFRun.abandoned}.
   */
  get status(): RunStatus {
    return this.state.status;
  }

  /**
   * Whether the run is unfinished with no driver executing it, as last observed: its driver was
   * killed, crashed or lost the run (its lease released without the run's end recorded, not
   * renewed for 15 s, or its process gone from this host). Nothing of it runs then: its status
   * stays `IN_PROGRESS`, and the partitions that were RUNNING are reported PENDING. Resume it —
   * `dpf.run()`/`dpf.runFromStage()` with the same runId and `onExistingArtifacts: 'resume'` (DONE
   * partitions are kept) — or cancel it. {@link DPFRun.wait} rejects with {@link RunAbandonedError}.
   *
   * @example
   * ```ts
   * const run = await DPFRun.restoreFrom('sales-by-region', './stage');
   * if (run.abandoned) await dpf.run({ ...sameOptions, runId: 'sales-by-region', onExistingArtifacts: 'resume' });
   * ```
   */
  get abandoned(): boolean {
    if (this.state.ended) return false;
    if (this.driver !== undefined) return this.driverFailed;
    // A queue run between drivers (submitted, or its driver's worker died) waits for a worker to
    // take its drive job, as BullMQ jobs wait for workers: it is not abandoned — unless a driver
    // of it gave up (released its lease on an error) without ending it.
    if (this.state.start?.queue !== undefined) return this.leaseHolder?.released === true && this.leaseHolder.note !== SUBMITTED_NOTE && this.leaseHolder.note !== DRIVER_HANDED_OVER;
    return this.leaseHolder?.alive !== true;
  }

  /** Whether the run is on a queue with no driver at the moment: submitted and not yet taken by a worker, or its driver's worker died and the queue has not yet handed its drive job to another. */
  get waitingForDriver(): boolean {
    return !this.state.ended && this.state.start?.queue !== undefined && this.driver === undefined && this.leaseHolder?.alive !== true && !this.abandoned;
  }

  /** The queue a queue run's partitions go through (its Redis without a password, and the queue's name); undefined for a run on one machine. */
  get queue(): Readonly<QueueTarget> | undefined {
    return this.state.start?.queue;
  }

  /** The run's `args` (what its function reads as `context.args`), as its latest driver ran it; undefined when it has none. */
  get args(): unknown {
    return this.state.start?.module?.args;
  }

  /** @internal What the run's workers call (its module, args and layer), as its latest driver ran it. */
  get called(): ModuleReference | undefined {
    return this.state.start?.module;
  }

  /**
   * @internal How its latest driver ran it — module, execution options, session database
   * (without credentials), queue — as its start record says; undefined before any start.
   */
  get lastStart(): Readonly<StartRecord> | undefined {
    return this.state.start;
  }

  /** @internal The run's uid (tells it from an earlier run of the same id that was overwritten). */
  get uid(): string {
    return this.spec.uid;
  }

  /** The stage the run lives in: its folder, or its `s3://` prefix. */
  get stageLocation(): string {
    return this.stage.location;
  }

  /**
   * What a reader of the run should know, as last observed: journal segments the fold skipped
   * (a replaced driver's, a torn tail's), partitions run again because their artifacts were gone.
   */
  get warnings(): readonly string[] {
    return this.state.notes;
  }

  /** What the run partitions: the input folder and pattern (stage mode), or the partition columns and source (DataFrame mode). */
  get input(): Readonly<StageInput | DataFrameInput> {
    return this.spec.input;
  }

  /** How many partitions the run has. */
  get numPartitions(): number {
    return this.partitions.length;
  }

  /**
   * Waits until the run ends and returns its status. Rejects with {@link RunAbandonedError} when
   * the run's driver died before finishing it.
   *
   * Ctrl-C while waiting on a run this process drives stops the run cleanly — running attempts
   * are cancelled, the run's state is written (it ends CANCELLED, finished partitions keep their
   * results) — prints how to resume it, and then ends the process as interrupted. (A program that
   * listens for SIGINT itself keeps the process: `wait()` returns CANCELLED.) A second Ctrl-C
   * quits at once, leaving the run to a resume.
   */
  async wait(options: WaitOptions = {}): Promise<RunStatus> {
    const bar = (options.showProgress ?? process.stderr.isTTY === true) ? new ProgressBar(this.runId, this.state) : undefined;
    const ticker = bar === undefined ? undefined : setInterval(() => bar.render(false), 100);
    let barDone = false;
    const finishBar = (): void => {
      if (ticker !== undefined) clearInterval(ticker);
      if (!barDone) bar?.render(true);
      barDone = true;
    };
    const driver = this.driver;
    let interrupted = false;
    const release =
      driver === undefined
        ? undefined
        : stopOnInterrupt(async () => {
            if (this.state.ended) return;
            interrupted = true;
            process.stderr.write(`\nrun "${this.runId}": interrupted; stopping it — running partitions are cancelled, finished ones keep their results (Ctrl-C again to quit at once)\n`);
            await driver.cancel();
            finishBar();
            process.stderr.write(`${this.stoppedNote()}\n`);
          });
    try {
      if (driver !== undefined) {
        await abortable(driver.done, options.signal);
      } else {
        while (!this.state.ended) {
          options.signal?.throwIfAborted();
          await this.refresh();
          if (this.state.ended) break;
          if (this.abandoned) throw new RunAbandonedError(await this.abandonment());
          await sleep(POLL_MS, undefined, { signal: options.signal });
        }
      }
    } finally {
      release?.();
      if (interrupted) await interruptHandled();
      finishBar();
    }
    return this.state.status;
  }

  /** What an interrupted run's user reads once it has stopped. */
  private stoppedNote(): string {
    const counts = PARTITION_STATUSES.filter((status) => this.state.count(status) > 0)
      .map((status) => `${this.state.count(status)} ${status}`)
      .join(', ');
    const stopped = `run "${this.runId}" stopped (interrupted): ${counts || 'no partitions'}`;
    if (this.state.status === RunStatus.SUCCESS) return `${stopped}; every partition was DONE already`;
    return `${stopped}; resume it with onExistingArtifacts: 'resume' and runId '${this.runId}' (DONE partitions are kept)`;
  }

  /** Every partition's details, grouped by status (every status is a key, possibly with an empty list). */
  async getProgress(): Promise<RunProgress> {
    await this.refresh();
    const progress = Object.fromEntries(PARTITION_STATUSES.map((status) => [status, [] as SinglePartitionDetails[]])) as RunProgress;
    const abandoned = this.abandoned;
    this.partitions.forEach((partition, index) => {
      const details = this.details(partition, index, abandoned);
      progress[details.status].push(details);
    });
    return progress;
  }

  /**
   * Every partition's details by partition id. The object has no prototype, so any id is a key
   * like any other — `__proto__`, `toString` and `constructor` included — and an id the run does not
   * have gives `undefined`, never something every object inherits.
   */
  async getPartitionDetails(): Promise<Record<string, SinglePartitionDetails>> {
    await this.refresh();
    const details = Object.create(null) as Record<string, SinglePartitionDetails>;
    const abandoned = this.abandoned;
    this.partitions.forEach((partition, index) => {
      details[partition.id] = this.details(partition, index, abandoned);
    });
    return details;
  }

  /**
   * @internal How many partitions are in each status, as their details report them (as last
   * observed): for the CLI, which must not build a million details to count them.
   */
  statusCounts(): Map<PartitionStatus, number> {
    const counts = new Map(PARTITION_STATUSES.map((status) => [status, this.state.count(status)]));
    if (this.abandoned) {
      counts.set(PartitionStatus.PENDING, counts.get(PartitionStatus.PENDING)! + counts.get(PartitionStatus.RUNNING)!);
      counts.set(PartitionStatus.RUNNING, 0);
    }
    return counts;
  }

  /**
   * @internal The details of the first `limit` partitions, in the run's order, whose status is
   * one of `statuses` (any, when undefined), and how many partitions have one (as last observed).
   */
  selectPartitions(statuses: ReadonlySet<PartitionStatus> | undefined, limit: number): { details: SinglePartitionDetails[]; matching: number } {
    const abandoned = this.abandoned;
    const shown = (index: number): PartitionStatus => {
      const status = this.state.partitions[index]!.status;
      return abandoned && status === PartitionStatus.RUNNING ? PartitionStatus.PENDING : status;
    };
    const details: SinglePartitionDetails[] = [];
    let matching = 0;
    for (let index = 0; index < this.partitions.length; index++) {
      if (statuses !== undefined && !statuses.has(shown(index))) continue;
      if (matching++ < limit) details.push(this.details(this.partitions[index]!, index, abandoned));
    }
    return { details, matching };
  }

  /** @internal One partition's details, read from the stage now (a restored run's journal is read again), or undefined when the run has no partition of that id. */
  async currentDetails(partitionId: string): Promise<SinglePartitionDetails | undefined> {
    await this.refresh();
    return this.partitionDetails(partitionId);
  }

  /** @internal One partition's details (as last observed), or undefined when the run has no partition of that id. */
  partitionDetails(partitionId: string): SinglePartitionDetails | undefined {
    const index = this.partitions.findIndex((partition) => partition.id === partitionId);
    return index < 0 ? undefined : this.details(this.partitions[index]!, index, this.abandoned);
  }

  /**
   * @internal The partitions and their states as last observed, without building details: for the
   * dashboard, which pages, filters and sorts 100,000 partitions on every request. A state left
   * RUNNING under a driver that is gone is reported PENDING by details (`abandoned`).
   */
  partitionStates(): { partitions: readonly PlannedPartition[]; states: readonly PartitionState[]; abandoned: boolean } {
    return { partitions: this.partitions, states: this.state.partitions, abandoned: this.abandoned };
  }

  /** @internal Reads what the run's journal and lease gained since the last look (restored runs; a live run is always current). */
  async observe(): Promise<void> {
    await this.refresh();
  }

  /** @internal When the run was created, when its current driver started it (a resume's start), and when it ended. */
  get times(): { createdAt: Date; startedAt: Date | undefined; finishedAt: Date | undefined } {
    const at = (time: number | undefined): Date | undefined => (time === undefined ? undefined : new Date(time));
    return { createdAt: new Date(this.spec.createdAt), startedAt: at(this.state.startedAt), finishedAt: at(this.state.finishedAt) };
  }

  /** @internal A reader of the run's attempts over time (its whole journal), for the dashboard's timeline. */
  attemptTimeline(): AttemptTimelineReader {
    return new AttemptTimelineReader(this.stage, this.spec);
  }

  /** @internal Who held the run's lease when it was last observed (restored runs). */
  get driverLease(): LeaseHolder | undefined {
    return this.leaseHolder;
  }

  /**
   * Stops the run: pending partitions become CANCELLED, running ones are aborted through
   * `context.signal` (and terminated if they do not stop within a few seconds); finished
   * partitions keep their results. Works on a restored run too, by asking its driver through the
   * stage. Resolves once the run has ended.
   */
  async cancel(): Promise<void> {
    if (this.driver !== undefined) return this.driver.cancel();
    await this.refresh();
    if (this.state.ended) return;
    await this.stage.put(this.layout.cancelRequest, new Date().toISOString());
    for (;;) {
      await this.refresh();
      if (this.state.ended) return;
      // A run no driver executes now (abandoned, or a queue run waiting for one) is cancelled here.
      if (this.abandoned || this.waitingForDriver) return this.cancelAbandoned();
      await sleep(POLL_MS);
    }
  }

  /** @internal A queue run this process drives: stop driving it without ending it, for another worker to take on (see RunDriver.handOver). */
  async handOver(): Promise<void> {
    await this.driver?.handOver();
  }

  /**
   * Runs SQL (DuckDB's dialect) over what the partitions uploaded. Each entry of `views` names a
   * view over one artifact — a Parquet, Arrow, CSV or JSON file every DONE partition uploaded under that
   * name — read as one table whose first column, `partition_id`, says which partition wrote the
   * row. The view `partitions` is always there: `partition_id`, `status`, `attempts`, `num_rows`,
   * `duration_ms`, `folder`.
   *
   * @example
   * ```ts
   * const top = await run.query(
   *   'SELECT partition_id, mean_delay FROM models ORDER BY mean_delay DESC LIMIT 5',
   *   { models: 'model.json' },
   * );
   * console.log(top.toArray().map((row) => row.toJSON()));
   * ```
   */
  async query(sql: string, views: Readonly<Record<string, string>> = {}): Promise<Table> {
    await this.refresh();
    const { queryRunResults } = await import('./results-query.js');
    return queryRunResults(this.stage, this.layout, this.partitions, this.state, sql, views);
  }

  /**
   * @internal Writes one artifact name's table (as {@link DPFRun.query} reads it: `partition_id`
   * first, then the rows of every DONE partition's artifact) to a Parquet file; returns its rows.
   */
  async exportTable(artifact: string, path: string): Promise<number> {
    await this.refresh();
    const { exportArtifactTable } = await import('./results-query.js');
    return exportArtifactTable(this.stage, this.layout, this.partitions, this.state, artifact, path);
  }

  /**
   * The run's partition transitions from now until it ends, as an async iterable.
   *
   * @example
   * ```ts
   * for await (const event of run.events()) console.log(event.partitionId, event.status);
   * ```
   */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<PartitionEvent> {
    if (this.state.ended) return;
    const controller = new AbortController();
    const stopOnEnd = (): void => controller.abort();
    this.once('end', stopOnEnd);
    // A run whose driver stopped on an error has no end event: the iteration ends with it.
    void this.driver?.done.catch(stopOnEnd);
    options.signal?.addEventListener('abort', stopOnEnd, { once: true });
    try {
      for await (const [event] of on(this, 'partition', { signal: controller.signal })) yield event as PartitionEvent;
    } catch (error) {
      if ((error as Error).name !== 'AbortError') throw error;
    } finally {
      this.off('end', stopOnEnd);
    }
  }

  /**
   * Reads what the journal gained since the last look, and who holds the run's lease (restored
   * runs). The lease is read first: a driver records the run's end before it releases its lease,
   * so a lease read as released or dead is never newer than the journal read after it.
   */
  private async refresh(): Promise<void> {
    if (this.follower === undefined) return;
    const lease = await readHolder(this.stage, this.layout);
    const { records, changes } = await this.follower.refresh();
    await this.noteLease(lease);
    this.emitTransitions(records, changes);
  }

  /** Keeps the lease read before the journal, unless a driver took the run in between (its lease is newer then). */
  private async noteLease(lease: LeaseHolder | undefined): Promise<void> {
    this.leaseHolder = lease !== undefined && lease.epoch < this.state.epoch ? await readHolder(this.stage, this.layout) : lease;
  }

  private emitTransitions(records: readonly JournalRecord[], changes: readonly PartitionRecord[]): void {
    if (this.listenerCount('partition') > 0) {
      for (const change of changes) {
        const event: PartitionEvent = { partitionId: this.partitions[change.i]?.id ?? String(change.i), status: change.s, attempt: change.a };
        if (change.error !== undefined) event.error = change.error;
        this.emit('partition', event);
      }
    }
    if (this.driver !== undefined) return;
    for (const record of records) if (record.t === 'end') this.emit('end', record.status);
  }

  /** Restored runs: keeps reading the journal while someone listens, until the run ends. */
  private follow(): Promise<void> {
    this.polling ??= (async () => {
      while (!this.state.ended && (this.listenerCount('partition') > 0 || this.listenerCount('end') > 0)) {
        await this.refresh();
        await sleep(POLL_MS);
      }
      this.polling = undefined;
    })();
    return this.polling;
  }

  /**
   * @internal What became of the driver of an abandoned run, and what to do (the message of
   * {@link RunAbandonedError}; `dpf status` prints it too). A driver is gone when its lease was
   * released without the run's end recorded, not renewed for LEASE_STALE_MS (a paused driver
   * wakes to find it lost the run, so resuming it is safe), or its process is gone from this host.
   */
  async abandonment(): Promise<string> {
    const holder = this.leaseHolder;
    const who = holder === undefined ? '' : ` (pid ${holder.pid} on ${holder.host}, last heard ${new Date(holder.renewedAt).toISOString()})`;
    const why = holder?.note !== undefined ? `: ${holder.note}` : holder?.released === true ? '' : holder?.host === hostname() ? ' (its process is gone, or has not renewed its lease for 15 s)' : ' (it has not renewed its lease for 15 s)';
    const inputComplete =
      this.spec.input.mode !== 'dataframe' || (await readInputManifest(this.stage, this.layout.inputFolder(this.state.start?.input ?? 1)).catch(() => undefined))?.complete === true;
    const what = inputComplete
      ? "resume it with onExistingArtifacts: 'resume' and the same runId (DONE partitions are kept; should the old driver still be alive, it stops when it sees the run taken), or cancel it"
      : "it stopped before its input was fully written: resume it giving the source again (the input is written again, DONE partitions are kept), or run it again with onExistingArtifacts: 'overwrite'";
    return `The driver of run "${this.runId}"${who} stopped before the run ended${why}; ${what}`;
  }

  /** The driver is gone: record the cancellation ourselves, as the run's owner for the moment. */
  private async cancelAbandoned(): Promise<void> {
    const lease = await RunLease.take(this.stage, this.layout);
    if (!(lease instanceof RunLease)) return this.cancel();
    const follower = this.follower!;
    try {
      await this.refresh();
      if (lease.epoch <= follower.state.epoch) await lease.raiseEpoch(follower.state.epoch + 1);
      const start = follower.state.start;
      await follower.takeOver(lease, () => {
        const at = Date.now();
        const records: JournalRecord[] = [
          { t: 'start', epoch: lease.epoch, owner: lease.owner, pid: process.pid, host: hostname(), at, partitions: this.partitions.length, list: start?.list ?? 1, todo: 0, purpose: 'cancel' },
          { t: 'cancel', at },
        ];
        this.state.partitions.forEach((partition, index) => {
          if (partition.status === PartitionStatus.PENDING || partition.status === PartitionStatus.RUNNING) {
            records.push({ t: 'partition', i: index, s: PartitionStatus.CANCELLED, a: partition.attempts, at } satisfies PartitionRecord);
          }
        });
        records.push({ t: 'end', epoch: lease.epoch, at, status: finishedRunStatus(this.state.count(PartitionStatus.DONE), this.partitions.length, true) });
        return records;
      });
      await this.stage.delete(this.layout.cancelRequest);
      await this.refresh();
    } finally {
      await lease.release();
    }
  }

  private details(partition: PlannedPartition, index: number, abandoned: boolean): PartitionDetails {
    const state = this.state.partitions[index]!;
    // Nothing runs under a driver that is gone: what it left RUNNING waits for a resume.
    const status = abandoned && state.status === PartitionStatus.RUNNING ? PartitionStatus.PENDING : state.status;
    return new PartitionDetails(partition.id, partition.folder, state, this.stage, this.layout, status);
  }
}

/** Who holds a run's lease now; undefined when it has none (or it cannot be read). */
async function readHolder(stage: Stage, layout: RunLayout): Promise<LeaseHolder | undefined> {
  const lease = await readLease(stage, layout).catch(() => undefined);
  return lease === undefined ? undefined : describeHolder(lease.content);
}

async function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  signal.throwIfAborted();
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })),
  ]);
}
