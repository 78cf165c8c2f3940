import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import type { Schema } from 'apache-arrow';
import { PartitionTooLargeError } from '../errors.js';
import { loadArrow } from './lazy-modules.js';

/**
 * What a worker may hold when a partition is read whole (`toArrow()`, `toRecords()`,
 * `toColumns()`, the matrix of `toFeatures()`). A read that would not fit is refused before it is
 * made: its attempt fails with a {@link PartitionTooLargeError} that points to `batches()`, and
 * the worker lives on to run the next partition — instead of dying of the read, which would
 * blame a "worker crash".
 *
 * Two kinds of memory are counted, because two different things happen when they run out:
 * - the Arrow data: ArrayBuffers outside V8's heap, which no heap limit stops (a 2 GB `toArrow()`
 *   in a worker capped at 256 MB succeeds and holds 2 GB — what `memoryLimitMb` is set to
 *   prevent: several workers share the machine). It counts against the worker's configured
 *   `memoryLimitMb`; without one, against the machine's memory, past which the kernel kills
 *   the process (with threads, the driver too).
 * - the JavaScript values `toRecords()` and `toColumns()` build from it, in V8's heap: past the
 *   heap's limit V8 kills the worker ("Reached heap limit"). They count against the configured
 *   limit too, and, configured or not, against the room left in the heap.
 *
 * The heap estimate is a lower bound (an object header and a slot per value; boxed numbers and
 * strings not counted), so a refused read would not have fitted; a read that passes may still
 * exceed the limit, and then the worker dies as before.
 */

export type WholeRead = 'toArrow' | 'toRecords' | 'toColumns' | 'toFeatures';

/** How big a partition is, read whole. */
export interface PartitionSize {
  /** Its rows, when known (with `schema`, what the heap estimate of records and columns needs). */
  rows?: number;
  /** Bytes of its Arrow data in memory. */
  arrowBytes: number;
  schema?: Schema;
  /** Only part of it was read, `rows` rows of `arrowBytes` bytes, when the read was stopped: the partition holds more. */
  stopped?: boolean;
}

let configuredLimitMb: number | undefined;

/** Sets this worker's memory limit (`executionOptions.memoryLimitMb`; undefined: none). */
export function configureMemoryLimit(limitMb: number | undefined): void {
  configuredLimitMb = limitMb;
}

/** Bytes a whole partition's Arrow data may take in this worker. */
export function arrowBudgetBytes(): number {
  return configuredLimitMb !== undefined ? configuredLimitMb * MIB : machineMemoryBytes();
}

/**
 * Refuses a whole-partition read of `what` that would not fit in this worker's memory. A read
 * that streams its Arrow data in stops once it passes {@link arrowBudgetBytes} and calls this
 * with what it read (`stopped`), which then throws.
 */
export async function checkFitsInMemory(what: string, read: WholeRead, size: PartitionSize): Promise<void> {
  const heapBytes = size.rows !== undefined && size.schema !== undefined ? await heapBytesOf(read, size.rows, size.schema) : 0;
  const heap = getHeapStatistics();
  const heapRoom = heap.heap_size_limit - heap.used_heap_size;
  const total = size.arrowBytes + heapBytes;
  if (total > arrowBudgetBytes()) throw tooLarge(what, read, size, heapBytes, budgetLimit());
  if (heapBytes > heapRoom) throw tooLarge(what, read, size, heapBytes, { limit: `the ${mb(heapRoom)} MB left in this worker's JavaScript heap`, remedy: RAISE });
}

/**
 * The JavaScript heap a read builds besides the Arrow data, at least: `toRecords()` an array of
 * objects (plus, while it runs, one plain array per column); `toColumns()` a plain array for each
 * column that is not a number (numbers become typed arrays, outside the heap).
 */
async function heapBytesOf(read: WholeRead, rows: number, schema: Schema): Promise<number> {
  const columns = schema.fields.length;
  if (read === 'toRecords') return rows * (RECORD_BYTES + columns * 2 * SLOT_BYTES);
  if (read === 'toArrow' || read === 'toFeatures') return 0;
  const { Type } = await loadArrow();
  const plain = schema.fields.filter((field) => field.type.typeId !== Type.Int && field.type.typeId !== Type.Float).length;
  return rows * plain * SLOT_BYTES;
}

/** An object's header and its slot in the array of records. */
const RECORD_BYTES = 32;
/** A value's slot in an object or array. */
const SLOT_BYTES = 8;
const MIB = 1024 * 1024;

/** A limit a read passed, as the error names it, and what else than batches() would do. */
interface Limit {
  limit: string;
  remedy: string;
}

const RAISE = 'raise executionOptions.memoryLimitMb';

function tooLarge(what: string, read: WholeRead, size: PartitionSize, heapBytes: number, { limit, remedy }: Limit): PartitionTooLargeError {
  const rows = size.rows?.toLocaleString('en');
  const holds = size.stopped === true
    ? `more than ${mb(size.arrowBytes)} MB of Arrow data${rows !== undefined ? ` (the read was stopped after ${rows} rows)` : ''}`
    : `${rows !== undefined ? `${rows} rows, ` : ''}about ${mb(size.arrowBytes)} MB of Arrow data`;
  const values = heapBytes > 0 ? ` and ${mb(heapBytes)} MB more for the JavaScript values ${read}() builds` : '';
  return new PartitionTooLargeError(
    `${what} holds ${holds}${values}: more than ${limit}. ` +
      `${read}() holds the whole partition in memory; read it with data.batches(), which holds one batch at a time, or ${remedy}`,
  );
}

function budgetLimit(): Limit {
  return configuredLimitMb !== undefined
    ? { limit: `this worker's memory limit of ${configuredLimitMb} MB (executionOptions.memoryLimitMb)`, remedy: RAISE }
    : { limit: `this machine's memory (${mb(machineMemoryBytes())} MB)`, remedy: 'run it on a machine with more memory' };
}

/**
 * The memory of this machine, or of the container (cgroup) it runs in when that is less. Read
 * once: asking costs about 12 µs (the cgroup's files), which every partition of a run of small
 * ones would pay.
 */
function machineMemoryBytes(): number {
  if (machineMemory === undefined) {
    const constrained = process.constrainedMemory?.() ?? 0;
    const total = totalmem();
    machineMemory = constrained > 0 && constrained < total ? constrained : total;
  }
  return machineMemory;
}

let machineMemory: number | undefined;

function mb(bytes: number): string {
  return Math.ceil(bytes / MIB).toLocaleString('en');
}
