import type { PlannedPartition } from '../plan/partition.js';

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
 * left: early batches are large, the last ones a single task each, so the workers still finish
 * together. Retries go before everything else.
 */
export class Schedule {
  private readonly order: number[];
  private head = 0;
  private readonly retries: number[] = [];
  private queuedCost = 0;
  /** Measured milliseconds per unit of cost (size + 1), once partitions have finished. */
  private msPerCost: number | undefined;

  constructor(
    private readonly partitions: readonly PlannedPartition[],
    indices: readonly number[],
  ) {
    this.order = [...indices].sort((a, b) => partitions[b]!.size - partitions[a]!.size || a - b);
    for (const index of this.order) this.queuedCost += this.cost(index);
  }

  get size(): number {
    return this.order.length - this.head + this.retries.length;
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

  /** The next batch for one of `workers` workers; empty when nothing is queued. */
  takeBatch(workers: number): number[] {
    const share = this.queuedCost / (workers * BATCHES_PER_WORKER);
    const floor = this.msPerCost === undefined ? 1 : MIN_BATCH_MS / this.msPerCost;
    const target = Math.max(1, share, floor);
    const batch: number[] = [];
    let cost = 0;
    while (batch.length < MAX_BATCH) {
      const index = this.retries.length > 0 ? this.retries[this.retries.length - 1] : this.order[this.head];
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

  /** Empties the schedule, returning what was queued. */
  drain(): number[] {
    const rest = [...this.retries, ...this.order.slice(this.head)];
    this.retries.length = 0;
    this.head = this.order.length;
    this.queuedCost = 0;
    return rest;
  }

  private cost(index: number): number {
    return this.partitions[index]!.size + 1;
  }
}
