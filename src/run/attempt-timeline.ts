import type { PartitionRecord } from '../model/journal.js';
import type { RunSpec } from '../model/run-spec.js';
import { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { PartitionStatus } from '../status.js';
import { JournalReader } from './journal.js';
import { readPartitions } from './run-spec.js';
import { RunState } from './run-state.js';

/**
 * Every attempt of every partition of a run, columnar (index k of each array is attempt k), so
 * 100,000 attempts stay a few MB of JSON. Lanes are the workers that ran the attempts: a worker
 * of a later driver (a resume, a takeover) is a lane of its own.
 */
export interface AttemptTimeline {
  /** Lane labels: `worker 3`, or `driver 2 · worker 3` once more than one driver ran attempts. */
  lanes: string[];
  /** Partition ids, indexed by `partition`. */
  ids: string[];
  partition: number[];
  lane: number[];
  /** The attempt's number (1, then 2… on retries and resumed runs). */
  attempt: number[];
  /** Epoch ms. */
  start: number[];
  /** Epoch ms; null while it runs. */
  end: Array<number | null>;
  /** How the attempt ended: see {@link AttemptOutcome}. */
  outcome: AttemptOutcome[];
}

/**
 * DONE; FAILED (the partition's last attempt failed), TIMEOUT or CRASHED (the same, by a timeout
 * or the worker's death); RETRIED (it failed and the partition ran again); CANCELLED;
 * INTERNAL_ERROR; INTERRUPTED (its driver stopped before recording an end: a later driver ran the
 * partition again or left it); RUNNING.
 */
export type AttemptOutcome = 'DONE' | 'FAILED' | 'TIMEOUT' | 'CRASHED' | 'RETRIED' | 'CANCELLED' | 'INTERNAL_ERROR' | 'INTERRUPTED' | 'RUNNING';

/**
 * Builds a run's {@link AttemptTimeline} by folding its whole journal — from the first segment,
 * not a checkpoint, since a checkpoint keeps each partition's last attempt only — through the same
 * fold every reader uses ({@link RunState.applySegments}), watching the partition changes it makes:
 * a change to RUNNING opens an attempt on the lane of the worker it went to, the next change of
 * that partition closes it. `refresh` folds only what the journal gained since the last call, so
 * a dashboard following a live run reads each segment once.
 */
export class AttemptTimelineReader {
  private readonly reader: JournalReader;
  private readonly state = new RunState(0);
  private readonly timeline: AttemptTimeline = { lanes: [], ids: [], partition: [], lane: [], attempt: [], start: [], end: [], outcome: [] };
  private readonly laneOf = new Map<string, number>();
  /** Per partition: its attempt that is open (RUNNING), by index into the timeline's arrays. */
  private readonly open = new Map<number, number>();
  /** The epochs that ran attempts, in order (driver numbers in lane labels). */
  private readonly epochs: number[] = [];
  private list = 0;

  constructor(
    private readonly stage: Stage,
    private readonly spec: RunSpec,
  ) {
    this.reader = new JournalReader(stage, new RunLayout(spec.runId));
  }

  /** The timeline with what the journal holds now. The object returned is the reader's own: read it before the next call. */
  async refresh(): Promise<AttemptTimeline> {
    const read = await this.reader.readNew();
    const taken = this.state.applySegments(this.stage, read.segments, this.spec.uid, this.reader.expectedSeq, undefined, (index, record) => this.change(index, record));
    if (taken > 0) this.reader.folded(read.segments[taken - 1]!);
    const list = this.state.start?.list ?? 1;
    if (list !== this.list || this.timeline.ids.length < this.state.partitions.length) {
      this.timeline.ids = (await readPartitions(this.stage, new RunLayout(this.spec.runId), list)).map((partition) => partition.id);
      this.list = list;
    }
    if (this.state.ended) this.closeAll(this.state.finishedAt ?? Date.now(), 'CANCELLED');
    return this.timeline;
  }

  private change(index: number, record: PartitionRecord): void {
    const opened = this.open.get(index);
    if (record.s === PartitionStatus.RUNNING) {
      if (opened !== undefined) this.close(index, opened, record.at, 'INTERRUPTED');
      this.openAttempt(index, record);
      return;
    }
    if (record.s === PartitionStatus.PENDING && record.error === undefined) {
      // Dispatched to a worker that runs it later, or handed back by a driver: no attempt yet.
      if (opened !== undefined) this.close(index, opened, record.at, 'INTERRUPTED');
      return;
    }
    const k = opened ?? this.openAttempt(index, record);
    // A final record says when its attempt really started (a task may wait in its worker a while).
    if (record.from !== undefined) this.timeline.start[k] = record.from;
    this.close(index, k, record.at, outcomeOf(record));
  }

  private openAttempt(index: number, record: PartitionRecord): number {
    const t = this.timeline;
    const k = t.partition.length;
    t.partition.push(index);
    t.lane.push(this.lane(this.state.partitions[index]?.worker));
    t.attempt.push(Math.max(record.a, 1));
    t.start.push(record.from ?? record.at);
    t.end.push(null);
    t.outcome.push('RUNNING');
    this.open.set(index, k);
    return k;
  }

  private close(index: number, k: number, at: number, outcome: AttemptOutcome): void {
    this.timeline.end[k] = Math.max(at, this.timeline.start[k]!);
    this.timeline.outcome[k] = outcome;
    this.open.delete(index);
  }

  /** The run ended: attempts it did not record an end of were stopped with it. */
  private closeAll(at: number, outcome: AttemptOutcome): void {
    for (const [index, k] of this.open) this.close(index, k, at, outcome);
  }

  /** The lane of a worker of the current driver (workers are numbered per driver); a lane per driver when its records name none. */
  private lane(worker: number | undefined): number {
    const epoch = this.state.epoch;
    const key = `${epoch}:${worker ?? ''}`;
    const known = this.laneOf.get(key);
    if (known !== undefined) return known;
    if (!this.epochs.includes(epoch)) {
      this.epochs.push(epoch);
      // A second driver: the first one's lanes say which driver they were too.
      if (this.epochs.length === 2) this.timeline.lanes = this.timeline.lanes.map((label) => `driver 1 · ${label}`);
    }
    const driver = this.epochs.indexOf(epoch) + 1;
    const name = worker === undefined ? 'workers' : `worker ${worker + 1}`;
    this.timeline.lanes.push(this.epochs.length > 1 ? `driver ${driver} · ${name}` : name);
    this.laneOf.set(key, this.timeline.lanes.length - 1);
    return this.timeline.lanes.length - 1;
  }
}

function outcomeOf(record: PartitionRecord): AttemptOutcome {
  switch (record.s) {
    case PartitionStatus.DONE:
      return 'DONE';
    case PartitionStatus.CANCELLED:
      return 'CANCELLED';
    case PartitionStatus.INTERNAL_ERROR:
      return 'INTERNAL_ERROR';
    case PartitionStatus.FAILED:
      if (record.error?.name === 'PartitionTimeoutError') return 'TIMEOUT';
      if (record.error?.name === 'WorkerCrashError') return 'CRASHED';
      return 'FAILED';
    default:
      // PENDING with an error: the attempt failed and the partition is to run again.
      return 'RETRIED';
  }
}
