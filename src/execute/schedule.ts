import type { PlannedPartition } from '../model/partition.js';

/** At most this many tasks go to a worker in one message. */
const MAX_BATCH = 512;
/** Batches are sized so each worker gets about this many of them from the remaining work. */
const BATCHES_PER_WORKER = 8;
/**
 * A batch holds at least this much work, by the measured time per partition: a batch costs a
 * message each way and a pack write, worth paying for a few milliseconds of work, not for 30 µs.
 */
const MIN_BATCH_MS = 5;

/**
 * The order partitions run in, and how they are grouped for the workers.
 *
 * Largest first (longest-processing-time order), so one big partition does not end the run alone.
 * Tiny partitions travel in batches — one message for many tasks — sized from the work that is
 * left: early batches are large, the last ones small, so the workers still finish together.
 * Retries go before everything else. A DataFrame-mode partition whose rows are not written yet
 * (the run's input is written while the run starts) is held until they are.
 */
export class Schedule {
  /** Ready partitions, largest first; `head` is the next one. */
  private ready: number[];
  private head = 0;
  /** Partitions waiting for their rows, by where their rows end. */
  private held: number[];
  private readonly retries: number[] = [];
  private queuedCost = 0;
  /** Measured milliseconds per unit of cost (size + 1), once partitions have finished. */
  private msPerCost: number | undefined;

  constructor(
    private readonly partitions: readonly PlannedPartition[],
    indices: readonly number[],
    /** Rows of the run's input already written; undefined when all are (or there is no such input). */
    writtenRows: number | undefined,
  ) {
    const waiting = (index: number): boolean => writtenRows !== undefined && this.rowsEnd(index) > writtenRows;
    this.ready = indices.filter((index) => !waiting(index)).sort(this.largestFirst);
    this.held = indices.filter(waiting).sort((a, b) => this.rowsEnd(a) - this.rowsEnd(b));
    for (const index of indices) this.queuedCost += this.cost(index);
  }

  /** Partitions queued, held ones included. */
  get size(): number {
    return this.ready.length - this.head + this.retries.length + this.held.length;
  }

  /** Makes the held partitions whose rows are now all written ready to run. */
  release(writtenRows: number): void {
    let released = 0;
    while (released < this.held.length && this.rowsEnd(this.held[released]!) <= writtenRows) released++;
    if (released === 0) return;
    this.ready = [...this.ready.slice(this.head), ...this.held.slice(0, released)].sort(this.largestFirst);
    this.head = 0;
    this.held = this.held.slice(released);
  }

  /** Puts a partition back at the front (a retry, or a task a dead worker never started). */
  putFirst(index: number): void {
    this.retries.push(index);
    this.queuedCost += this.cost(index);
  }

  /** Learns how long partitions take, from one that finished. */
  observe(index: number, milliseconds: number): void {
    const rate = Math.max(milliseconds, 0.001) / this.cost(index);
    this.msPerCost = this.msPerCost === undefined ? rate : 0.9 * this.msPerCost + 0.1 * rate;
  }

  /** The next batch for one of `workers` batch slots (workers × batches each holds); empty when nothing is ready. */
  takeBatch(workers: number): number[] {
    const share = this.queuedCost / (workers * BATCHES_PER_WORKER);
    const floor = this.msPerCost === undefined ? 1 : MIN_BATCH_MS / this.msPerCost;
    const target = Math.max(1, share, floor);
    // Never more than an even split of the tasks left: at the end of a run the estimate of quick
    // partitions may be wrong for the last ones, and one worker must not run them all in turn
    // while another sits idle.
    const most = Math.min(MAX_BATCH, Math.max(1, Math.ceil(this.size / workers)));
    const batch: number[] = [];
    let cost = 0;
    while (batch.length < most) {
      const index = this.retries.length > 0 ? this.retries[this.retries.length - 1] : this.ready[this.head];
      if (index === undefined) break;
      const taskCost = this.cost(index);
      if (batch.length > 0 && cost + taskCost > target) break;
      if (this.retries.length > 0) this.retries.pop();
      else this.head++;
      cost += taskCost;
      this.queuedCost -= taskCost;
      batch.push(index);
    }
    return batch;
  }

  /** Empties the schedule, returning what was queued or held. */
  drain(): number[] {
    const rest = [...this.retries, ...this.ready.slice(this.head), ...this.held];
    this.retries.length = 0;
    this.ready = [];
    this.head = 0;
    this.held = [];
    this.queuedCost = 0;
    return rest;
  }

  /** Empties the held partitions only (their rows will never be written), returning them. */
  drainHeld(): number[] {
    const held = this.held;
    this.held = [];
    for (const index of held) this.queuedCost -= this.cost(index);
    return held;
  }

  private readonly largestFirst = (a: number, b: number): number => this.partitions[b]!.size - this.partitions[a]!.size || a - b;

  private cost(index: number): number {
    return this.partitions[index]!.size + 1;
  }

  private rowsEnd(index: number): number {
    const input = this.partitions[index]!.input;
    return input.kind === 'rows' ? input.start + input.rows : 0;
  }
}
