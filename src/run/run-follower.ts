import { RunInProgressError } from '../errors.js';
import type { JournalRecord, PartitionRecord } from '../model/journal.js';
import type { PlannedPartition } from '../model/partition.js';
import type { RunSpec } from '../model/run-spec.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { encodeSegment, JournalReader } from './journal.js';
import type { RunLease } from './lease.js';
import { readPartitions } from './run-spec.js';
import { RunState, tornTailNote } from './run-state.js';

/**
 * A run's state as any process reads it from the stage: the newest checkpoint, then the journal's
 * segments after it, folded by {@link RunState.applySegments}; `refresh` folds what was added
 * since. The partition list follows the start record in force (a resume may add partitions).
 */
export class RunFollower {
  state = new RunState(0);
  partitions: PlannedPartition[] = [];
  /** The journal slot after the last segment seen (the next a new owner writes to). */
  nextSeq = 0;
  private readonly reader: JournalReader;
  private started = false;
  private list = 0;
  private readonly warned = new Set<string>();
  /** A damaged last segment the fold left for later (it may have been incomplete). */
  private pendingTail: { path: string; reason: string; seq: number } | undefined;

  constructor(
    private readonly stage: Stage,
    private readonly layout: RunLayout,
    readonly spec: RunSpec,
  ) {
    this.reader = new JournalReader(stage, layout);
  }

  /** Reads a run's whole state. */
  static async load(stage: Stage, layout: RunLayout, spec: RunSpec): Promise<RunFollower> {
    const follower = new RunFollower(stage, layout, spec);
    await follower.refresh();
    return follower;
  }

  /** Folds what the journal gained since the last look; returns the records applied, and the partition changes they made. */
  async refresh(): Promise<{ records: JournalRecord[]; changes: PartitionRecord[] }> {
    if (!this.started) {
      this.started = true;
      const checkpoint = await this.reader.checkpoint(this.spec.uid, (message) => this.state.note(message));
      if (checkpoint !== undefined) {
        this.state = RunState.fromCheckpoint(checkpoint);
        this.nextSeq = checkpoint.seq + 1;
      }
    }
    const read = await this.reader.readNew();
    const applied: JournalRecord[] = [];
    const changes: PartitionRecord[] = [];
    const taken = this.state.applySegments(
      this.stage,
      read.segments,
      this.spec.uid,
      this.reader.expectedSeq,
      (records) => {
        // One by one: a segment may hold a million records (a resume's), too many for a spread.
        for (const record of records) applied.push(record);
      },
      (_, change) => changes.push(change),
    );
    if (taken > 0) this.reader.folded(read.segments[taken - 1]!);
    const left = read.segments[taken];
    this.pendingTail = left !== undefined && !left.ok && taken === read.segments.length - 1 ? left : undefined;
    this.nextSeq = Math.max(this.nextSeq, read.nextSeq);
    const list = this.state.start?.list ?? 1;
    if (list !== this.list || this.partitions.length < this.state.partitions.length || this.partitions.length === 0) {
      this.partitions = await readPartitions(this.stage, this.layout, list);
      this.list = list;
      this.state.grow(this.partitions.length);
    }
    this.emitWarnings();
    return { records: applied, changes };
  }

  /**
   * Writes a new owner's first segment — its start record and what it decided from the state —
   * into the journal's next free slot. A slot taken meanwhile (a replaced driver's last segment
   * landing late) is folded in and the records decided again by `build`, so the new owner's view
   * includes everything before its start. Returns the next free slot.
   */
  async takeOver(lease: RunLease, build: (again: boolean) => JournalRecord[] | Promise<JournalRecord[]>): Promise<number> {
    const identity = { run: this.spec.uid, epoch: lease.epoch, writer: lease.owner };
    for (let again = false; ; again = true) {
      await lease.assertHeld();
      // Writing past a damaged last segment makes it the tail of its driver: say so in the journal.
      const tail = this.pendingTail;
      const built = await build(again);
      const records = tail === undefined ? built : [{ t: 'note' as const, at: Date.now(), message: tornTailNote(this.stage, tail) }, ...built];
      const start = records.findIndex((record) => record.t === 'start');
      if (start > 0) records.unshift(...records.splice(start, 1));
      // The start record names the damaged tail it writes past: readers skip exactly that one.
      if (tail !== undefined && records[0]?.t === 'start') records[0] = { ...records[0], skipped: [tail.seq] };
      const seq = this.nextSeq;
      if ((await this.stage.create(this.layout.segment(seq), encodeSegment(identity, seq, records))) !== undefined) {
        this.state.apply(records);
        this.nextSeq = seq + 1;
        return this.nextSeq;
      }
      await this.refresh();
      if (this.nextSeq <= seq) this.nextSeq = seq + 1;
      if (this.state.epoch >= lease.epoch && this.state.owner !== lease.owner) {
        throw new RunInProgressError(`Run "${this.layout.runId}" was taken over by another driver (epoch ${this.state.epoch}) at the same moment; wait for it, or cancel it`);
      }
    }
  }

  /** Says each skipped segment and note once, as a process warning (the CLI prints them). */
  private emitWarnings(): void {
    for (const note of this.state.notes) {
      if (this.warned.has(note) || (!note.startsWith('skipped') && !note.startsWith('ignoring'))) continue;
      this.warned.add(note);
      process.emitWarning(`run "${this.layout.runId}": ${note}`, 'DPFWarning');
    }
  }
}
