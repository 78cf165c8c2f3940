import type { SerializedError } from '../errors.js';
import type { PackedArtifact } from '../stage/artifact-pack.js';
import type { Stage } from '../stage/stage.js';
import type { PartitionStatus, RunStatus } from '../status.js';

/**
 * The run's journal: every status change, one JSON line each, appended to `_dpf/journal.ndjson`.
 *
 * The driver buffers records and appends them in batches (one write per flush, not one file per
 * partition), and only after a batch is written does the in-memory state change — so a partition
 * is reported DONE only once that is durable on the stage. Anyone can rebuild the run's state by
 * reading the journal from the start (restore, the CLI), or follow it by reading what was added.
 */
export type JournalRecord =
  /** A partition changed status. `at`: when; `from`: when its attempt started (final records). */
  | {
      t: 'partition';
      i: number;
      s: PartitionStatus;
      a: number;
      at: number;
      from?: number;
      rows?: number;
      error?: SerializedError;
      /** DONE: the partition's packed artifacts. */
      packed?: PackedArtifact[];
    }
  /** A batch of partitions went to a worker: each is RUNNING with its attempt (one record, not one each). */
  | { t: 'running'; i: number[]; a: number[]; at: number }
  /** A driver started (or resumed: `generation` > 1) the run, with this many partitions to run. */
  | { t: 'start'; generation: number; at: number; partitions: number; todo: number }
  /** Someone asked the run to stop. */
  | { t: 'cancel'; at: number }
  /** The driver finished this generation of the run with this status. */
  | { t: 'end'; generation: number; at: number; status: RunStatus };

/** Buffers records and appends them to the journal in batches. */
export class JournalWriter {
  private buffer: JournalRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(
    private readonly stage: Stage,
    private readonly path: string,
    /** Called with each batch once it is durable. */
    private readonly onCommitted: (records: readonly JournalRecord[]) => void,
    private readonly intervalMs = 50,
  ) {}

  record(record: JournalRecord): void {
    this.buffer.push(record);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(() => undefined);
    }, this.intervalMs);
  }

  /** Writes what is buffered; resolves once it is durable and applied. Rejects if a write failed. */
  flush(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.buffer;
    this.buffer = [];
    this.writing = this.writing.then(async () => {
      if (this.failure !== undefined) throw this.failure;
      if (batch.length === 0) return;
      try {
        await this.stage.append(this.path, compact(batch).map((record) => JSON.stringify(record)).join('\n') + '\n');
      } catch (error) {
        this.failure = error;
        throw error;
      }
      this.onCommitted(batch);
    });
    return this.writing;
  }
}

/** Reads a journal from the start, then what was appended since the last read. */
export class JournalReader {
  private offset = 0;
  private partial = '';

  constructor(
    private readonly stage: Stage,
    private readonly path: string,
  ) {}

  async readNew(): Promise<JournalRecord[]> {
    const size = (await this.stage.size(this.path)) ?? 0;
    if (size <= this.offset) return [];
    const bytes = await this.stage.readRange(this.path, this.offset, size - this.offset);
    this.offset += bytes.length;
    const text = this.partial + bytes.toString('utf8');
    const lines = text.split('\n');
    // A line still being appended has no newline yet: keep it for the next read.
    this.partial = lines.pop()!;
    const records: JournalRecord[] = [];
    for (const line of lines) {
      if (line === '') continue;
      const record = JSON.parse(line) as StoredRecord;
      if (record.t === 'done') expand(record, records);
      else records.push(record);
    }
    return records;
  }
}

/**
 * On disk, runs of DONE records (the bulk of a journal of many small partitions) are written as
 * one record of columns — one JSON object instead of thousands — and expanded again on reading.
 */
interface DoneRecords {
  t: 'done';
  i: number[];
  a: number[];
  at: number[];
  from: Array<number | null>;
  rows: Array<number | null>;
  /** Pack files, referred to by position in `art`. */
  packs: string[];
  /** Packed artifacts: [record position, pack position, name, offset, length]. */
  art: Array<[number, number, string, number, number]>;
}

type StoredRecord = JournalRecord | DoneRecords;
type PartitionRecord = Extract<JournalRecord, { t: 'partition' }>;

function compact(records: readonly JournalRecord[]): StoredRecord[] {
  const out: StoredRecord[] = [];
  let done: DoneRecords | undefined;
  for (const record of records) {
    if (record.t !== 'partition' || record.s !== 'DONE' || record.error !== undefined) {
      done = undefined;
      out.push(record);
      continue;
    }
    if (done === undefined) {
      done = { t: 'done', i: [], a: [], at: [], from: [], rows: [], packs: [], art: [] };
      out.push(done);
    }
    const position = done.i.length;
    done.i.push(record.i);
    done.a.push(record.a);
    done.at.push(record.at);
    done.from.push(record.from ?? null);
    done.rows.push(record.rows ?? null);
    for (const artifact of record.packed ?? []) {
      let pack = done.packs.indexOf(artifact.pack);
      if (pack < 0) pack = done.packs.push(artifact.pack) - 1;
      done.art.push([position, pack, artifact.name, artifact.offset, artifact.length]);
    }
  }
  return out;
}

function expand(done: DoneRecords, into: JournalRecord[]): void {
  const first = into.length;
  for (let k = 0; k < done.i.length; k++) {
    const record: PartitionRecord = { t: 'partition', i: done.i[k]!, s: 'DONE', a: done.a[k]!, at: done.at[k]! };
    if (done.from[k] !== null && done.from[k] !== undefined) record.from = done.from[k]!;
    if (done.rows[k] !== null && done.rows[k] !== undefined) record.rows = done.rows[k]!;
    into.push(record);
  }
  for (const [position, pack, name, offset, length] of done.art) {
    const record = into[first + position] as PartitionRecord;
    (record.packed ??= []).push({ name, pack: done.packs[pack]!, offset, length });
  }
}
