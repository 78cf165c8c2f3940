import { type Data, type DataType, type Field, makeVector, type RecordBatch, type Schema, Type, type Vector } from 'apache-arrow';
import { FeatureColumnError, InvalidOptionError } from '../errors.js';
import { arrowBudgetBytes, checkFitsInMemory } from './memory-budget.js';

/**
 * `data.toFeatures()`: a partition's numeric columns as one row-major matrix of doubles (or
 * floats) and a target vector — what JavaScript ML libraries take (ml-random-forest,
 * ml-regression and the rest of mljs through `toArrays()`, TensorFlow.js and ONNX Runtime through
 * the typed array itself).
 */

/** The element type of a {@link Features} matrix. */
export type FeatureDtype = 'float64' | 'float32';

/** The typed array of a {@link Features} matrix of `D`: `Float64Array` for `'float64'`, `Float32Array` for `'float32'`. */
export type FeatureArray<D extends FeatureDtype = FeatureDtype> = D extends 'float32' ? Float32Array : Float64Array;

/** What to do with a row that has a null (or a floating-point NaN) in a feature or the target. */
export type FeatureNulls = 'error' | 'drop';

/** Options of {@link DataConnector.toFeatures}. */
export interface FeatureOptions<D extends FeatureDtype = FeatureDtype> {
  /**
   * The columns that make the matrix's columns, in this order. Each must be numeric: integers of
   * any width, signed or not (64-bit ones as the nearest double: beyond ±2^53 a value is rounded,
   * as any conversion to floating point does — an identifier is no feature), floats, decimals
   * (the nearest double of their exact value; DuckDB's `CAST(x AS DOUBLE)` gives the same but
   * for an ulp past 2^64), booleans (1 and 0). Dates, timestamps, strings and nested types are refused with a
   * {@link FeatureColumnError} that names them and says how to make numbers of them.
   */
  features: readonly string[];
  /** The column to predict, read into {@link Features.target} under the same rules. Not one of `features`. */
  target?: string;
  /**
   * The element type of the matrix and the target. `'float32'` halves the memory and is what
   * TensorFlow.js and most ONNX models take; each value is rounded to the nearest float (a
   * magnitude past 3.4e38 becomes ±Infinity).
   * @defaultValue 'float64'
   */
  dtype?: D;
  /**
   * What a null — or a NaN in a floating-point column — in a feature or the target does:
   * `'error'` fails with a {@link FeatureColumnError} naming the column and the row (the first
   * such row of the partition); `'drop'` leaves the row out of the matrix and the target,
   * counts it in {@link Features.droppedRows} and gives the partition's row number of each row
   * kept in {@link Features.sourceRows}. ±Infinity is a value, not a null: it is kept.
   * @defaultValue 'error'
   */
  nulls?: FeatureNulls;
}

/**
 * A partition's features as numbers: a row-major matrix (`numRows` × `numFeatures`, row `i` at
 * `data[i * numFeatures … (i + 1) * numFeatures)`) and the target, both of the options' `dtype`.
 *
 * @example
 * ```ts
 * const { RandomForestRegression } = await import('ml-random-forest');
 * const features = await data.toFeatures({ features: ['price', 'promo'], target: 'units', nulls: 'drop' });
 * const model = new RandomForestRegression({ nEstimators: 50 });
 * model.train(features.toArrays(), features.targetArray()!);
 * ```
 */
export interface Features<D extends FeatureDtype = FeatureDtype> {
  /** The matrix, row-major: `numRows * numFeatures` values. */
  readonly data: FeatureArray<D>;
  readonly numRows: number;
  readonly numFeatures: number;
  /** The matrix's column names, in its order (the options' `features`). */
  readonly features: readonly string[];
  /** The target column's values, one per row; undefined without `target`. */
  readonly target: FeatureArray<D> | undefined;
  readonly dtype: D;
  /** Rows left out for a null (`nulls: 'drop'`); 0 otherwise. */
  readonly droppedRows: number;
  /**
   * With `nulls: 'drop'`: for each row of the matrix, its row number in the partition (0-based, in
   * the order `batches()` reads them) — to put predictions back beside the rows they came from.
   * Undefined with `nulls: 'error'`, where row `i` is the partition's row `i`.
   */
  readonly sourceRows: Uint32Array | undefined;
  /** Row `i` of the matrix: a view of `data`, no copy. */
  row(i: number): FeatureArray<D>;
  /**
   * The rows as plain arrays of numbers, what mljs's models (`train(x, y)`) take. A copy in the
   * JavaScript heap: about 8 bytes a value plus an array per row.
   */
  toArrays(): number[][];
  /** The target as a plain array of numbers; undefined without `target`. */
  targetArray(): number[] | undefined;
}

/** Where {@link readFeatures} reads a partition from: what each connector provides. */
export interface FeatureSource {
  /** The partition, as errors name it: its file's path, or `partition "…"`. */
  what: string;
  schema(): Promise<Schema>;
  /** Its rows when that is known without reading them (DataFrame mode; a Parquet file's metadata). */
  knownRows(): Promise<number | undefined>;
  /** The partition's batches; they hold at least `columns` (possibly more). */
  batches(columns: readonly string[]): AsyncIterable<RecordBatch>;
}

/** How a column's values become numbers. */
type Conversion = 'int' | 'float' | 'int64' | 'uint64' | 'decimal' | 'bool' | 'float16';

interface PlannedColumn {
  name: string;
  conversion: Conversion;
  /** A decimal's scale. */
  scale: number;
}

/**
 * Reads a partition's features: the options and the columns are checked against the schema before
 * any row is read, then the matrix is written column by column from each batch's Arrow data.
 */
export async function readFeatures(options: FeatureOptions, source: FeatureSource): Promise<Features> {
  const request = checkOptions(options);
  const schema = await source.schema();
  const columns = planColumns(request, schema, source.what);
  const features = columns.slice(0, request.features.length);
  const target = request.target !== undefined ? columns[columns.length - 1] : undefined;
  const width = features.length;
  const bytesPerValue = request.dtype === 'float32' ? 4 : 8;
  const bytesOf = (rows: number): number => rows * (width + (target !== undefined ? 1 : 0)) * bytesPerValue;
  const budget = arrowBudgetBytes();

  const knownRows = await source.knownRows();
  if (knownRows !== undefined) await checkFitsInMemory(source.what, 'toFeatures', { rows: knownRows, arrowBytes: bytesOf(knownRows) });
  const matrix = new GrowingMatrix(request.dtype, width, target !== undefined, request.nulls === 'drop', knownRows ?? 0);
  let rowsRead = 0;
  for await (const batch of source.batches(columns.map((column) => column.name))) {
    const rows = batch.numRows;
    if (rows === 0) continue;
    if (matrix.needsToGrow(rows)) {
      const capacity = matrix.capacityFor(rows);
      // The old and the new buffer are held while the rows are copied over.
      if (bytesOf(capacity + matrix.capacity) > budget) {
        await checkFitsInMemory(source.what, 'toFeatures', { rows: rowsRead, arrowBytes: bytesOf(capacity + matrix.capacity), stopped: true });
      }
      matrix.grow(capacity);
    }
    const at = matrix.rows;
    // Rows are looked at one by one only when a column wrote a NaN (a null, or a float's own).
    let wroteNaN = false;
    features.forEach((column, c) => {
      if (fillColumn(vectorOf(batch, column), column, matrix.data, at * width + c, width)) wroteNaN = true;
    });
    if (target !== undefined && fillColumn(vectorOf(batch, target), target, matrix.target!, at, 1)) wroteNaN = true;
    if (!wroteNaN) matrix.accept(rows, rowsRead);
    else if (request.nulls === 'drop') matrix.acceptComplete(rows, rowsRead);
    else {
      const bad = matrix.firstIncompleteRow(rows);
      if (bad !== undefined) throw nullError(source.what, batch, columns, features, target, matrix, bad, rowsRead);
      matrix.accept(rows, rowsRead);
    }
    rowsRead += rows;
  }
  return matrix.finish(request.features, rowsRead);
}

interface CheckedOptions {
  features: readonly string[];
  target: string | undefined;
  dtype: FeatureDtype;
  nulls: FeatureNulls;
}

const OPTION_KEYS = new Set(['features', 'target', 'dtype', 'nulls']);

function checkOptions(options: FeatureOptions): CheckedOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('toFeatures', 'takes an object: { features: [...columns], target?, dtype?, nulls? }');
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InvalidOptionError(`toFeatures.${key}`, `is not an option of toFeatures(); its options are ${[...OPTION_KEYS].join(', ')}`);
  }
  const { features, target, dtype = 'float64', nulls = 'error' } = options;
  if (!Array.isArray(features) || features.length === 0 || features.some((name) => typeof name !== 'string')) {
    throw new InvalidOptionError('toFeatures.features', 'must be a non-empty array of column names');
  }
  const seen = new Set<string>();
  for (const name of features) {
    if (seen.has(name)) throw new InvalidOptionError('toFeatures.features', `names the column "${name}" twice`);
    seen.add(name);
  }
  if (target !== undefined && typeof target !== 'string') throw new InvalidOptionError('toFeatures.target', 'must be a column name');
  if (target !== undefined && seen.has(target)) {
    throw new InvalidOptionError('toFeatures.target', `"${target}" is also among features: a model would be given what it should predict; leave it out of features`);
  }
  if (dtype !== 'float64' && dtype !== 'float32') throw new InvalidOptionError('toFeatures.dtype', `must be 'float64' or 'float32', not ${JSON.stringify(dtype)}`);
  if (nulls !== 'error' && nulls !== 'drop') throw new InvalidOptionError('toFeatures.nulls', `must be 'error' or 'drop', not ${JSON.stringify(nulls)}`);
  return { features, target, dtype, nulls };
}

/** The features' and the target's columns (the target last), or the error that says which are missing or not numbers. */
function planColumns(request: CheckedOptions, schema: Schema, what: string): PlannedColumn[] {
  const names = request.target !== undefined ? [...request.features, request.target] : [...request.features];
  const fields = new Map<string, Field>();
  for (const field of schema.fields) if (!fields.has(field.name)) fields.set(field.name, field);
  const missing = names.filter((name) => !fields.has(name));
  const planned: PlannedColumn[] = [];
  const notNumeric: Field[] = [];
  for (const name of names) {
    const field = fields.get(name);
    if (field === undefined) continue;
    const column = planColumn(field);
    if (column === undefined) notNumeric.push(field);
    else planned.push(column);
  }
  const refusedTypes = notNumeric.length > 0 ? ` ${notNumericSentence(notNumeric)}` : '';
  if (missing.length > 0) {
    throw new FeatureColumnError(
      'missing',
      missing,
      `${what} has no column ${missing.map(quote).join(', ')}; its columns are ${schema.fields.map((field) => quote(field.name)).join(', ') || '(none)'}.${refusedTypes}`,
    );
  }
  if (notNumeric.length > 0) {
    throw new FeatureColumnError(
      'not-numeric',
      notNumeric.map((field) => field.name),
      `${what}: toFeatures() takes numeric columns (integers, floats, decimals, booleans).${refusedTypes} ` +
        'Make numbers of them where the rows come from — in SQL, CAST(x AS DOUBLE) for numbers kept as text, ' +
        'epoch(ts) for the seconds of a date or timestamp, an encoding of your own for categories — or leave them out of features.',
    );
  }
  return planned;
}

function notNumericSentence(fields: readonly Field[]): string {
  const list = fields.map((field) => `${quote(field.name)} (${String(field.type)})`).join(', ');
  return fields.length === 1 ? `This column is not numeric: ${list}.` : `These columns are not numeric: ${list}.`;
}

function planColumn(field: Field): PlannedColumn | undefined {
  const type = field.type as DataType;
  const column = (conversion: Conversion, scale = 0): PlannedColumn => ({ name: field.name, conversion, scale });
  switch (type.typeId) {
    case Type.Int: {
      const { bitWidth, isSigned } = type as unknown as { bitWidth: number; isSigned: boolean };
      return bitWidth === 64 ? column(isSigned ? 'int64' : 'uint64') : column('int');
    }
    case Type.Float: {
      const half = (type as unknown as { precision: number }).precision === 0;
      return column(half ? 'float16' : 'float');
    }
    case Type.Decimal:
      return column('decimal', (type as unknown as { scale: number }).scale);
    case Type.Bool:
      return column('bool');
    default:
      return undefined;
  }
}

function vectorOf(batch: RecordBatch, column: PlannedColumn): Vector {
  const vector = batch.getChild(column.name);
  // The schema was checked; a batch without the column means the source changed under the read.
  if (vector === null) throw new FeatureColumnError('missing', [column.name], `a batch of the partition has no column "${column.name}"`);
  return vector;
}

type Matrix = Float64Array | Float32Array;

/**
 * Writes a column's values, from `at` on every `stride`-th slot of `out`; a null becomes NaN.
 * Returns whether it wrote a NaN.
 */
function fillColumn(vector: Vector, column: PlannedColumn, out: Matrix, at: number, stride: number): boolean {
  let position = at;
  let wroteNaN = false;
  for (const data of vector.data as Data[]) {
    if (fillData(data, column, out, position, stride)) wroteNaN = true;
    position += data.length * stride;
  }
  return wroteNaN;
}

const TWO_TO_32 = 4294967296;

function fillData(data: Data, column: PlannedColumn, out: Matrix, at: number, stride: number): boolean {
  const length = data.length;
  let wroteNaN = false;
  // apache-arrow slices a Data's values to its rows (index 0 is its first row), except a boolean's
  // bits and the null bitmap, which stay whole: their bit for row i is at offset + i.
  switch (column.conversion) {
    case 'int': {
      const values = data.values as ArrayLike<number>;
      for (let i = 0, o = at; i < length; i++, o += stride) out[o] = values[i]!;
      break;
    }
    case 'float': {
      const values = data.values as Float32Array | Float64Array;
      for (let i = 0, o = at; i < length; i++, o += stride) {
        const value = values[i]!;
        if (value !== value) wroteNaN = true;
        out[o] = value;
      }
      break;
    }
    case 'int64':
    case 'uint64': {
      // High word × 2^32 + low word: one rounding of the exact value, as Number(bigint) does,
      // without a BigInt per value.
      const values = data.values as BigInt64Array | BigUint64Array;
      const low = new Uint32Array(values.buffer, values.byteOffset, length * 2);
      const high = column.conversion === 'int64' ? new Int32Array(values.buffer, values.byteOffset, length * 2) : low;
      for (let i = 0, o = at; i < length; i++, o += stride) out[o] = high[2 * i + 1]! * TWO_TO_32 + low[2 * i]!;
      break;
    }
    case 'decimal':
      fillDecimals(data, column.scale, out, at, stride);
      break;
    case 'bool': {
      const bits = data.values as Uint8Array;
      for (let i = 0, o = at, bit = data.offset; i < length; i++, o += stride, bit++) out[o] = (bits[bit >> 3]! >> (bit & 7)) & 1;
      break;
    }
    case 'float16': {
      const vector = makeVector(data);
      for (let i = 0, o = at; i < length; i++, o += stride) {
        const value = (vector.get(i) as number | null) ?? NaN;
        if (value !== value) wroteNaN = true;
        out[o] = value;
      }
      break;
    }
  }
  if (data.nullCount > 0) {
    wroteNaN = true;
    const validity = data.nullBitmap!;
    for (let i = 0, o = at, bit = data.offset; i < length; i++, o += stride, bit++) {
      if (((validity[bit >> 3]! >> (bit & 7)) & 1) === 0) out[o] = NaN;
    }
  }
  return wroteNaN;
}

/**
 * Decimals (little-endian two's-complement words of 32 bits) as the nearest double of their exact
 * value. An integer of up to 53 bits is exact in a double, and so is 10^scale up to 10^22: their
 * quotient is then rounded once, correctly — the common case, without a BigInt. Any other value
 * is read from its digits (`Number('…e-scale')`, rounded once as well).
 */
function fillDecimals(data: Data, scale: number, out: Matrix, at: number, stride: number): void {
  const words = data.values as Uint32Array;
  const perValue = (data.type as unknown as { bitWidth: number }).bitWidth / 32;
  const divisor = 10 ** Math.abs(scale);
  const fast = scale >= 0 && scale <= 22;
  for (let i = 0, o = at; i < data.length; i++, o += stride) {
    const base = i * perValue;
    const low = words[base]!;
    if (perValue === 1 && fast) {
      out[o] = (low | 0) / divisor;
      continue;
    }
    const high = perValue === 1 ? 0 : words[base + 1]! | 0;
    if (fast && high >= -0x200000 && high < 0x200000 && fitsInTwoWords(words, base, perValue)) {
      out[o] = (high * TWO_TO_32 + low) / divisor;
      continue;
    }
    let big = 0n;
    for (let w = perValue - 1; w >= 0; w--) big = (big << 32n) | BigInt(words[base + w]!);
    out[o] = Number(`${BigInt.asIntN(perValue * 32, big)}e${-scale}`);
  }
}

/** Whether a decimal's words past the second are the sign extension of the second (the value fits in 64 bits). */
function fitsInTwoWords(words: Uint32Array, base: number, perValue: number): boolean {
  const extension = words[base + 1]! & 0x80000000 ? 0xffffffff : 0;
  for (let w = 2; w < perValue; w++) if (words[base + w] !== extension) return false;
  return true;
}

/**
 * The matrix (and target) as it is filled, batch by batch: made once at the partition's size when
 * that is known, else grown by doubling; rows with a null are compacted away with `nulls: 'drop'`.
 */
class GrowingMatrix {
  data: Matrix;
  target: Matrix | undefined;
  /** Rows kept so far. */
  rows = 0;
  capacity: number;
  private sourceRows: Uint32Array | undefined;

  constructor(
    private readonly dtype: FeatureDtype,
    private readonly width: number,
    hasTarget: boolean,
    dropping: boolean,
    capacity: number,
  ) {
    this.capacity = capacity;
    this.data = this.allocate(capacity * width);
    this.target = hasTarget ? this.allocate(capacity) : undefined;
    this.sourceRows = dropping ? new Uint32Array(capacity) : undefined;
  }

  needsToGrow(rows: number): boolean {
    return this.rows + rows > this.capacity;
  }

  capacityFor(rows: number): number {
    return Math.max(this.rows + rows, this.capacity * 2);
  }

  grow(capacity: number): void {
    const data = this.allocate(capacity * this.width);
    data.set(this.data.subarray(0, this.rows * this.width));
    this.data = data;
    if (this.target !== undefined) {
      const target = this.allocate(capacity);
      target.set(this.target.subarray(0, this.rows));
      this.target = target;
    }
    if (this.sourceRows !== undefined) {
      const sourceRows = new Uint32Array(capacity);
      sourceRows.set(this.sourceRows.subarray(0, this.rows));
      this.sourceRows = sourceRows;
    }
    this.capacity = capacity;
  }

  /** Keeps the `rows` rows just written, the partition's rows from `firstSourceRow` on. */
  accept(rows: number, firstSourceRow: number): void {
    if (this.sourceRows !== undefined) for (let r = 0; r < rows; r++) this.sourceRows[this.rows + r] = firstSourceRow + r;
    this.rows += rows;
  }

  /** Keeps those of the `rows` rows just written that have no NaN, moved up over the ones left out. */
  acceptComplete(rows: number, firstSourceRow: number): void {
    const { width, data, target } = this;
    let kept = this.rows;
    for (let r = 0; r < rows; r++) {
      const from = this.rows + r;
      if (this.isIncomplete(from)) continue;
      if (kept !== from) {
        data.copyWithin(kept * width, from * width, (from + 1) * width);
        if (target !== undefined) target[kept] = target[from]!;
      }
      this.sourceRows![kept] = firstSourceRow + r;
      kept++;
    }
    this.rows = kept;
  }

  /** The first of the `rows` rows just written that has a NaN, as an index among them. */
  firstIncompleteRow(rows: number): number | undefined {
    for (let r = 0; r < rows; r++) if (this.isIncomplete(this.rows + r)) return r;
    return undefined;
  }

  private isIncomplete(row: number): boolean {
    const { width, data, target } = this;
    if (target !== undefined && Number.isNaN(target[row])) return true;
    for (let i = row * width, end = i + width; i < end; i++) if (Number.isNaN(data[i])) return true;
    return false;
  }

  /** The features, its buffers cut to the rows kept when they are bigger. */
  finish(features: readonly string[], rowsRead: number): Features {
    const { rows, width } = this;
    const trimmedTo = <T extends Matrix | Uint32Array>(array: T, length: number): T => (array.length === length ? array : (array.slice(0, length) as T));
    return new FeatureMatrix(
      trimmedTo(this.data, rows * width),
      rows,
      [...features],
      this.target !== undefined ? trimmedTo(this.target, rows) : undefined,
      this.dtype,
      rowsRead - rows,
      this.sourceRows !== undefined ? trimmedTo(this.sourceRows, rows) : undefined,
    );
  }

  private allocate(length: number): Matrix {
    return this.dtype === 'float32' ? new Float32Array(length) : new Float64Array(length);
  }
}

class FeatureMatrix implements Features {
  readonly numFeatures: number;

  constructor(
    readonly data: Matrix,
    readonly numRows: number,
    readonly features: readonly string[],
    readonly target: Matrix | undefined,
    readonly dtype: FeatureDtype,
    readonly droppedRows: number,
    readonly sourceRows: Uint32Array | undefined,
  ) {
    this.numFeatures = features.length;
  }

  row(i: number): Matrix {
    if (!Number.isInteger(i) || i < 0 || i >= this.numRows) throw new RangeError(`row(${i}): the matrix has rows 0 to ${this.numRows - 1}`);
    return this.data.subarray(i * this.numFeatures, (i + 1) * this.numFeatures);
  }

  toArrays(): number[][] {
    const { data, numRows, numFeatures } = this;
    const rows = new Array<number[]>(numRows);
    for (let r = 0; r < numRows; r++) {
      const row = new Array<number>(numFeatures);
      for (let c = 0, i = r * numFeatures; c < numFeatures; c++, i++) row[c] = data[i]!;
      rows[r] = row;
    }
    return rows;
  }

  targetArray(): number[] | undefined {
    return this.target === undefined ? undefined : Array.from(this.target);
  }
}

/** The error for the first row with a null (`nulls: 'error'`): its column and row, and what to do. */
function nullError(
  what: string,
  batch: RecordBatch,
  columns: readonly PlannedColumn[],
  features: readonly PlannedColumn[],
  target: PlannedColumn | undefined,
  matrix: GrowingMatrix,
  rowInBatch: number,
  rowsBefore: number,
): FeatureColumnError {
  const at = matrix.rows + rowInBatch;
  const isNaNAt = (column: PlannedColumn): boolean =>
    column === target ? Number.isNaN(matrix.target![at]) : Number.isNaN(matrix.data[at * features.length + features.indexOf(column)]);
  const column = columns.find(isNaNAt)!;
  const isNull = !vectorOf(batch, column).isValid(rowInBatch);
  const row = rowsBefore + rowInBatch;
  const fill = isNull ? `COALESCE("${column.name}", 0)` : `CASE WHEN isnan("${column.name}") THEN 0 ELSE "${column.name}" END`;
  return new FeatureColumnError(
    'null',
    [column.name],
    `${what}: column "${column.name}" has ${isNull ? 'a null' : 'a NaN'} at row ${row} (0-based), and toFeatures() was asked for nulls: 'error'. ` +
      `Pass nulls: 'drop' to leave such rows out (features.droppedRows counts them), or fill them in where the rows come from (in SQL, ${fill}).`,
    row,
  );
}

function quote(name: string): string {
  return `"${name}"`;
}
