import { crc32 } from 'node:zlib';
import { LeaseLostError, StageDamagedError } from '../errors.js';
import type { Checkpoint, JournalRecord, PartitionRecord, SegmentHeader, SegmentTrailer } from '../model/journal.js';
import type { ArtifactRef, LogRef } from '../model/refs.js';
import { checkHeader, FORMATS, parseStored } from '../model/stored-json.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { PartitionStatus } from '../status.js';

/**
 * The journal's segments on the stage (see model/journal.ts for what they hold and why): how a
 * segment is written and read back, how the driver appends to the journal, and how anyone reads
 * it from the start or follows it.
 */

/** Who writes a segment: the run, and the writer's lease. */
export interface SegmentWriterIdentity {
  run: string;
  epoch: number;
  writer: string;
}

/** A segment read back. */
export type ReadSegment =
  | { seq: number; path: string; ok: true; header: SegmentHeader; records: JournalRecord[] }
  | { seq: number; path: string; ok: false; reason: string };

/** The bytes of one segment. Runs of DONE records are stored as one record of columns (see {@link compact}). */
export function encodeSegment(identity: SegmentWriterIdentity, seq: number, records: readonly JournalRecord[]): string {
  const header: SegmentHeader = { dpf: 'journal', format: FORMATS.journal, run: identity.run, seq, epoch: identity.epoch, writer: identity.writer };
  const stored = compact(records);
  const body = [JSON.stringify(header), ...stored.map((record) => JSON.stringify(record))].join('\n') + '\n';
  const trailer: SegmentTrailer = { end: stored.length, crc: crc32(body) };
  return body + JSON.stringify(trailer) + '\n';
}

/** Parses a segment, recognising one that is cut short or altered (a trailer that does not match). */
export function decodeSegment(stage: Stage, path: string, seq: number, bytes: Buffer): ReadSegment {
  const text = bytes.toString('utf8');
  const broken = (reason: string): ReadSegment => ({ seq, path, ok: false, reason });
  if (!text.endsWith('\n')) return broken('it is cut short (no final newline)');
  const lastBreak = text.lastIndexOf('\n', text.length - 2);
  const body = text.slice(0, lastBreak + 1);
  let trailer: SegmentTrailer;
  try {
    trailer = JSON.parse(text.slice(lastBreak + 1)) as SegmentTrailer;
  } catch {
    return broken('its last line is not the segment trailer (cut short)');
  }
  if (typeof trailer.crc !== 'number' || crc32(body) !== trailer.crc) return broken('its checksum does not match its content (cut short or altered)');
  const lines = body.split('\n');
  lines.pop();
  const where = stage.describe(path);
  const header = JSON.parse(lines[0]!) as SegmentHeader;
  checkHeader(header, where, 'journal', 'restore the file, or run the run again with onExistingArtifacts: \'overwrite\'');
  if (header.seq !== seq) return broken(`its header says it is segment ${header.seq}`);
  if (lines.length - 1 !== trailer.end) return broken('its record count does not match its trailer');
  const records: JournalRecord[] = [];
  for (let n = 1; n < lines.length; n++) expand(JSON.parse(lines[n]!) as StoredRecord, records);
  return { seq, path, ok: true, header, records };
}

/**
 * Appends records to the journal as the run's owner: buffered, and written in one new segment
 * per flush (at most every {@link JournalWriter.intervalMs}, not one object per partition). Only
 * once a segment is on the stage are its records applied (`onCommitted`), so a partition is
 * reported DONE only when that is durable.
 *
 * A failed write stops the writer at once: `onFailed` hears it (the driver stops the run), and
 * later flushes reject with the same error — a record is never silently dropped. Finding the next
 * slot taken by a newer owner's start record means this driver lost the run.
 */
export class JournalWriter {
  private buffer: JournalRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  constructor(
    private readonly stage: Stage,
    private readonly layout: RunLayout,
    private readonly identity: SegmentWriterIdentity,
    /** The next free slot. */
    private seq: number,
    private readonly hooks: {
      /** Called with each batch once it is durable. */
      onCommitted: (records: readonly JournalRecord[]) => void;
      /** Called once, with the first failure. */
      onFailed: (error: Error) => void;
      /** Rejects when the writer may no longer commit (its lease is lost, or too old and not renewable). */
      assertOwner: () => Promise<void>;
      /** Segments written so far, for checkpoints. */
      onSegment?: (seq: number) => void;
    },
    readonly intervalMs = 50,
  ) {}

  /** The slot the next segment goes to. */
  get nextSeq(): number {
    return this.seq;
  }

  record(record: JournalRecord): void {
    if (this.failure !== undefined) return;
    this.buffer.push(record);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      // A failure is reported through onFailed; nothing is lost by not awaiting here.
      this.flush().catch(() => undefined);
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
        await this.hooks.assertOwner();
        await this.writeSegment(batch);
      } catch (error) {
        this.fail(error as Error);
        throw this.failure!;
      }
      this.hooks.onCommitted(batch);
    });
    return this.writing;
  }

  /** Stops the writer: nothing more is written (the driver lost the run or is stopping on an error). */
  fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.buffer = [];
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.hooks.onFailed(error);
  }

  private async writeSegment(records: readonly JournalRecord[]): Promise<void> {
    for (;;) {
      const path = this.layout.segment(this.seq);
      const created = await this.stage.create(path, encodeSegment(this.identity, this.seq, records));
      if (created !== undefined) {
        this.hooks.onSegment?.(this.seq);
        this.seq++;
        return;
      }
      // The slot is taken. A newer owner's segment there means the run is no longer ours; anything
      // else (a fenced-out writer's, an overwritten run's, a damaged one) is skipped by readers too.
      const existing = await this.stage.get(path);
      if (existing !== undefined) {
        const segment = readableSegment(this.stage, path, this.seq, existing.bytes);
        if (segment?.ok === true && segment.header.run === this.identity.run && segment.header.epoch >= this.identity.epoch && segment.header.writer !== this.identity.writer) {
          throw new LeaseLostError(
            `The driver of run "${this.layout.runId}" lost the run to another driver (epoch ${segment.header.epoch}, ${this.stage.describe(path)}); it stopped and committed nothing more`,
          );
        }
      }
      this.seq++;
    }
  }
}

/** A segment as {@link decodeSegment} reads it, or undefined for one that is not a segment of this dpf at all. */
function readableSegment(stage: Stage, path: string, seq: number, bytes: Buffer): ReadSegment | undefined {
  try {
    return decodeSegment(stage, path, seq, bytes);
  } catch {
    return undefined;
  }
}

/** What a reader found when it last read the journal. */
export interface JournalRead {
  segments: ReadSegment[];
  /** The slot after the last segment present (damaged ones included). */
  nextSeq: number;
}

/**
 * Reads a run's journal: from a checkpoint when there is one, then every segment after it in
 * order; later calls read only what was added. A segment that is cut short or altered is
 * returned as such (`ok: false`) for the fold to judge (RunState.applySegments). The reader does
 * not move past an incomplete last segment: the next call reads it again, with what followed it.
 */
export class JournalReader {
  private lastPath: string | undefined;
  private seq = 0;

  constructor(
    private readonly stage: Stage,
    private readonly layout: RunLayout,
  ) {}

  /** The newest readable checkpoint, read once, before the first segments. */
  async checkpoint(run: string, warn: (message: string) => void): Promise<Checkpoint | undefined> {
    const entries = await this.stage.list(this.layout.checkpointFolder);
    for (const entry of entries.reverse()) {
      const object = await this.stage.get(entry.path);
      if (object === undefined) continue;
      try {
        const checkpoint = parseStored<Checkpoint>(object.bytes.toString('utf8'), this.stage.describe(entry.path), 'checkpoint', 'it is ignored');
        if (checkpoint.run !== run) continue;
        this.seq = checkpoint.seq + 1;
        this.lastPath = this.layout.segment(checkpoint.seq);
        return checkpoint;
      } catch (error) {
        warn(`ignoring the damaged checkpoint ${this.stage.describe(entry.path)}: ${(error as Error).message}`);
      }
    }
    return undefined;
  }

  /** The slot the next segment to fold is expected in. */
  get expectedSeq(): number {
    return this.seq;
  }

  /**
   * The segments after the last one folded. The reader moves past a segment only when told it
   * was folded ({@link JournalReader.folded}): one the fold left (an incomplete last segment, a
   * segment beyond a gap) is read again next time, with what followed it.
   */
  async readNew(): Promise<JournalRead> {
    const entries = await this.stage.list(this.layout.journalFolder, this.lastPath === undefined ? {} : { startAfter: this.lastPath });
    const segments: ReadSegment[] = [];
    for (const entry of entries) {
      const seq = this.layout.segmentSeq(entry.path);
      if (seq === undefined || seq < this.seq) continue;
      const object = await this.stage.get(entry.path);
      if (object === undefined) continue;
      segments.push(decodeSegment(this.stage, entry.path, seq, object.bytes));
    }
    const nextSeq = segments.length === 0 ? this.seq : segments[segments.length - 1]!.seq + 1;
    return { segments, nextSeq };
  }

  /** The fold took this segment (and all before it). */
  folded(segment: ReadSegment): void {
    this.lastPath = segment.path;
    this.seq = segment.seq + 1;
  }
}

/** Throws the error for journal slots missing before a segment of the run. */
export function missingSegments(stage: Stage, after: ReadSegment, expected: number): never {
  const where = stage.describe(after.path);
  throw new StageDamagedError(
    where,
    `The journal of the run has no segment ${expected}${after.seq - 1 > expected ? ` to ${after.seq - 1}` : ''} before ${where}: segments were deleted, so the run's state cannot be read. ` +
      "Restore them from a backup, or run the run again with onExistingArtifacts: 'overwrite'",
  );
}

/** Throws the error for a damaged segment that records after it depend on. */
export function damagedSegment(stage: Stage, segment: Extract<ReadSegment, { ok: false }>): never {
  const where = stage.describe(segment.path);
  throw new StageDamagedError(
    where,
    `The journal segment ${where} is damaged (${segment.reason}) and later records of the run depend on it, so the run's state cannot be read. ` +
      "Restore the file from a backup, or run the run again with onExistingArtifacts: 'overwrite'",
  );
}

/**
 * On the stage, runs of DONE records (the bulk of a journal of many small partitions) are one
 * record of columns — one JSON object instead of thousands — expanded again on reading.
 */
interface DoneRecords {
  t: 'done';
  i: number[];
  a: number[];
  at: number[];
  from: Array<number | null>;
  rows: Array<number | null>;
  /** Dispatch numbers (see PartitionRecord.d); null for none. */
  d: Array<number | null>;
  /** Objects referred to, by position in `art` and `log`. */
  keys: string[];
  /** Artifacts: [record position, key position, name, offset or -1, length, crc or -1]. */
  art: Array<[number, number, string, number, number, number]>;
  /** Logs: [record position, key position, attempt, offset or -1, length, crc or -1]. */
  log: Array<[number, number, number, number, number, number]>;
}

type StoredRecord = JournalRecord | DoneRecords;

function compact(records: readonly JournalRecord[]): StoredRecord[] {
  const out: StoredRecord[] = [];
  let done: DoneRecords | undefined;
  for (const record of records) {
    if (record.t !== 'partition' || record.s !== PartitionStatus.DONE || record.error !== undefined || record.k !== undefined) {
      done = undefined;
      out.push(record);
      continue;
    }
    if (done === undefined) {
      done = { t: 'done', i: [], a: [], at: [], from: [], rows: [], d: [], keys: [], art: [], log: [] };
      out.push(done);
    }
    const position = done.i.length;
    done.i.push(record.i);
    done.a.push(record.a);
    done.at.push(record.at);
    done.from.push(record.from ?? null);
    done.rows.push(record.rows ?? null);
    done.d.push(record.d ?? null);
    if (record.art === undefined && record.log === undefined) continue;
    const keyOf = (key: string): number => {
      let index = done!.keys.lastIndexOf(key);
      if (index < 0) index = done!.keys.push(key) - 1;
      return index;
    };
    for (const ref of record.art ?? []) done.art.push([position, keyOf(ref.key), ref.name, ref.offset ?? -1, ref.length, ref.crc ?? -1]);
    for (const ref of record.log ?? []) done.log.push([position, keyOf(ref.key), ref.attempt, ref.offset ?? -1, ref.length, ref.crc ?? -1]);
  }
  return out;
}

function expand(stored: StoredRecord, into: JournalRecord[]): void {
  if (stored.t !== 'done') {
    into.push(stored);
    return;
  }
  const first = into.length;
  for (let n = 0; n < stored.i.length; n++) {
    const record: PartitionRecord = { t: 'partition', i: stored.i[n]!, s: PartitionStatus.DONE, a: stored.a[n]!, at: stored.at[n]! };
    if (stored.from[n] !== null && stored.from[n] !== undefined) record.from = stored.from[n]!;
    if (stored.rows[n] !== null && stored.rows[n] !== undefined) record.rows = stored.rows[n]!;
    if (stored.d[n] !== null && stored.d[n] !== undefined) record.d = stored.d[n]!;
    into.push(record);
  }
  const ref = (key: number, offset: number, length: number, crc: number) => ({
    key: stored.keys[key]!,
    ...(offset >= 0 ? { offset } : {}),
    length,
    ...(crc >= 0 ? { crc } : {}),
  });
  for (const [position, key, name, offset, length, crc] of stored.art) {
    const record = into[first + position] as PartitionRecord;
    (record.art ??= []).push({ name, ...ref(key, offset, length, crc) } as ArtifactRef);
  }
  for (const [position, key, attempt, offset, length, crc] of stored.log) {
    const record = into[first + position] as PartitionRecord;
    (record.log ??= []).push({ attempt, ...ref(key, offset, length, crc) } as LogRef);
  }
}
