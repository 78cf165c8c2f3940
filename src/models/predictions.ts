import type { Table } from 'apache-arrow';
import { isArrowTable, recordsToTable } from '../data/records.js';
import { loadArrow } from '../data/lazy-modules.js';
import { sqlIdentifier } from '../data/sql.js';
import { SerializationError } from '../errors.js';
import type { SqlSession } from '../execute/sql-session.js';
import { describeModel } from './model-serde.js';

/** Each inference partition's predictions, with the column {@link MODEL_RUN_COLUMN}. */
export const PREDICTIONS_ARTIFACT = 'predictions.parquet';

/** Each inference partition's {@link ModelSource}. */
export const MODEL_SOURCE_ARTIFACT = 'model-source.json';

/** The column of every prediction that names the training run its model came from. */
export const MODEL_RUN_COLUMN = 'model_run_id';

/**
 * The columns dpf adds: `model_run_id` to every prediction; `run_id` and `partition_id` (the
 * inference run's) to the rows of `predictionsTable` — `run.query` adds `partition_id` itself.
 */
const RESERVED = [MODEL_RUN_COLUMN, 'run_id', 'partition_id'];

/**
 * Which model scored an inference partition: the training run and the partition of it whose
 * model it was (`fallback` when that was the fallback's, the partition having none of its own).
 * All null for a partition skipped for having no model (`onMissingModel: 'skip'`).
 */
export interface ModelSource {
  runId: string | null;
  partitionId: string | null;
  fallback: boolean;
}

/**
 * What an inference function returned, as the predictions table: an Arrow table or an array of
 * records, with `model_run_id` added; undefined when it returned nothing or no rows (it wrote its
 * results itself, or the partition had none to score).
 */
export async function predictionsTable(predictions: unknown, modelRunId: string, partitionId: string): Promise<Table | undefined> {
  if (predictions === undefined || predictions === null) return undefined;
  if (Array.isArray(predictions)) {
    if (predictions.length === 0) return undefined;
    const named = RESERVED.find((name) => predictions.some((row) => row !== null && typeof row === 'object' && Object.hasOwn(row, name)));
    if (named !== undefined) throw reserved(named, partitionId);
    return recordsToTable(predictions.map((row: unknown) => (row !== null && typeof row === 'object' && !Array.isArray(row) ? { ...row, [MODEL_RUN_COLUMN]: modelRunId } : notARecord(row, partitionId))));
  }
  if (isArrowTable(predictions)) {
    if (predictions.numRows === 0) return undefined;
    const named = RESERVED.find((name) => predictions.schema.fields.some((field) => field.name === name));
    if (named !== undefined) throw reserved(named, partitionId);
    const { Table, Utf8, vectorFromArray } = await loadArrow();
    return predictions.assign(new Table({ [MODEL_RUN_COLUMN]: vectorFromArray(new Array<string>(predictions.numRows).fill(modelRunId), new Utf8()) }));
  }
  throw new SerializationError(
    `the inference function returned ${describeModel(predictions)} for partition "${partitionId}": return its predictions as an Arrow table or an array of records ` +
      '(saved as predictions.parquet), or nothing when it writes its results itself',
  );
}

/**
 * Replaces the partition's rows of the inference run in `name` with `predictions` (none when
 * undefined), in the attempt's transaction: a rerun or resume of the run (`'overwrite'`,
 * `'resume'`) never leaves a partition's predictions twice. The table is created from the first
 * predictions, with `run_id` and `partition_id` first.
 */
export async function replacePredictions(session: SqlSession, name: string, runId: string, partitionId: string, predictions: Table | undefined): Promise<void> {
  const exists = await session.query('SELECT 1 AS found FROM information_schema.tables WHERE table_name = $1 AND table_schema = current_schema()', [name]);
  if (exists.length > 0) await session.query(`DELETE FROM ${sqlIdentifier(name)} WHERE run_id = $1 AND partition_id = $2`, [runId, partitionId]);
  if (predictions === undefined) return;
  const { Table, Utf8, vectorFromArray } = await loadArrow();
  const constant = (value: string) => vectorFromArray(new Array<string>(predictions.numRows).fill(value), new Utf8());
  await session.append(name, new Table({ run_id: constant(runId), partition_id: constant(partitionId) }).assign(predictions));
}

function reserved(column: string, partitionId: string): SerializationError {
  return new SerializationError(
    `the predictions of partition "${partitionId}" have a column "${column}", one of those dpf adds (${RESERVED.join(', ')}: which training run's model made a row, ` +
      'and in predictionsTable which inference run and partition); rename that column',
  );
}

function notARecord(row: unknown, partitionId: string): never {
  throw new SerializationError(`the inference function returned an array holding ${describeModel(row)} for partition "${partitionId}": return an array of records (objects), or an Arrow table`);
}
