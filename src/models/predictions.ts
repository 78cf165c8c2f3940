import type { Table } from 'apache-arrow';
import { isArrowTable, recordsToTable } from '../data/records.js';
import { loadArrow } from '../data/lazy-modules.js';
import { SerializationError } from '../errors.js';
import { describeModel } from './model-serde.js';

/** Each inference partition's predictions, with the column {@link MODEL_RUN_COLUMN}. */
export const PREDICTIONS_ARTIFACT = 'predictions.parquet';

/** Each inference partition's {@link ModelSource}. */
export const MODEL_SOURCE_ARTIFACT = 'model-source.json';

/** The column of every prediction that names the training run its model came from. */
export const MODEL_RUN_COLUMN = 'model_run_id';

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
    if (predictions.some((row) => row !== null && typeof row === 'object' && Object.hasOwn(row, MODEL_RUN_COLUMN))) throw reserved(partitionId);
    return recordsToTable(predictions.map((row: unknown) => (row !== null && typeof row === 'object' && !Array.isArray(row) ? { ...row, [MODEL_RUN_COLUMN]: modelRunId } : notARecord(row, partitionId))));
  }
  if (isArrowTable(predictions)) {
    if (predictions.numRows === 0) return undefined;
    if (predictions.schema.fields.some((field) => field.name === MODEL_RUN_COLUMN)) throw reserved(partitionId);
    const { Table, Utf8, vectorFromArray } = await loadArrow();
    return predictions.assign(new Table({ [MODEL_RUN_COLUMN]: vectorFromArray(new Array<string>(predictions.numRows).fill(modelRunId), new Utf8()) }));
  }
  throw new SerializationError(
    `the inference function returned ${describeModel(predictions)} for partition "${partitionId}": return its predictions as an Arrow table or an array of records ` +
      '(saved as predictions.parquet), or nothing when it writes its results itself',
  );
}

function reserved(partitionId: string): SerializationError {
  return new SerializationError(
    `the predictions of partition "${partitionId}" have a column "${MODEL_RUN_COLUMN}", which dpf adds to say which training run's model made them; rename that column`,
  );
}

function notARecord(row: unknown, partitionId: string): never {
  throw new SerializationError(`the inference function returned an array holding ${describeModel(row)} for partition "${partitionId}": return an array of records (objects), or an Arrow table`);
}
