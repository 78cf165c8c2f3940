import { dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Table } from 'apache-arrow';
import { DPF, type DataFrameRunOptions, type DPFOptions, type StageRunOptions } from '../dpf.js';
import { InvalidOptionError } from '../errors.js';
import { loadModuleExports, moduleExports, type PartitionModule, resolveModuleReference } from '../execute/partition-module.js';
import type { JsonValue } from '../model/json-value.js';
import type { ModuleReference } from '../model/run-spec.js';
import type { DPFRun } from '../run/dpf-run.js';
import { isS3Location } from '../stage/s3-location.js';
import { RunStatus } from '../status.js';
import { checkInteger, checkOptionsObject, checkString, describe } from '../validate.js';
import { LayerRun, restoreLayerRun } from './layer-run.js';
import { INFERENCE_LAYER, type InferenceLayerOptions, type MissingModelPolicy } from './inference-layer.js';
import { checkSerde, type ModelSerde, type SerdeReference, serdeReference } from './model-serde.js';
import { MODEL_SOURCE_ARTIFACT, type ModelSource, PREDICTIONS_ARTIFACT } from './predictions.js';
import { TRAINING_LAYER, type TrainingLayerOptions } from './training-layer.js';

/** Options of {@link ManyModelInference}: a {@link DPF}'s, the training runs, and what to do without a model. */
export interface ManyModelInferenceOptions<M> extends DPFOptions {
  /**
   * The {@link ManyModelTraining} run(s) on this stage whose models score the data. With several
   * (a full training run, then runs that retrained only the drifted partitions with
   * `partitionIds`), each partition's model comes from the newest run — the one created last —
   * that has the partition DONE. A run still in progress is refused: its set of models would
   * change under the inference run.
   */
  trainingRunId: string | readonly string[];
  /**
   * Loads the models. A custom serde, or a built-in with a `loader`, must also be exported by the
   * inference module, where workers find it (see {@link ModelSerde}); its `filename` must be the
   * training runs'.
   * @defaultValue the inference module's export named `serde`; else the training runs' serde when
   *   it is a built-in (without its loader: the function gets the saved JSON or bytes)
   */
  serde?: ModelSerde<M>;
  /**
   * A partition that no training run has a DONE model for: `'error'` fails it with a
   * `ModelNotFoundError` saying why each run has none; `'skip'` marks it DONE without calling the
   * function (its log and `modelSource` say so); `{ fallback: 'id' }` scores it with that training
   * partition's model (a global model, say), which must exist when the run starts.
   * @defaultValue `'error'`
   */
  onMissingModel?: MissingModelPolicy;
  /**
   * An explicit choice of training run for some partitions (`{ 'store-7': 'train-v1' }`), over the
   * newest-first rule; each run must be one of `trainingRunId` and have that partition DONE.
   */
  modelRuns?: Readonly<Record<string, string>>;
  /**
   * A table of the session database (`context.withSession`) every partition's predictions are
   * also written to, with the inference run's `run_id` and the `partition_id` first — replacing
   * that run's earlier rows of the partition, in the attempt's transaction: a failed attempt
   * leaves no row, and a retry, a resume or an `'overwrite'` rerun none twice. Created from the
   * first predictions' columns when it does not exist. A plain name (letters, digits, `_`), in
   * the database's default schema. A queue run, or one on an S3 stage, needs a `sessionDatabase`
   * its workers share (PostgreSQL).
   */
  predictionsTable?: string;
  /**
   * How many models each worker keeps loaded, least recently used out: partitions that share a
   * model (a fallback, a retry) load it once per worker. 0 loads every partition's model anew.
   * A model that leaves the cache is dropped for the garbage collector, not closed (an ONNX
   * session's `release()` is not called): keep the cache small for models that hold much memory.
   * @defaultValue 16
   */
  cacheModels?: number;
}

const OPTION_KEYS = ['stage', 'sessionDatabase', 'queue', 'trainingRunId', 'serde', 'onMissingModel', 'modelRuns', 'predictionsTable', 'cacheModels'];

/**
 * Scores new data with one model per partition (Snowflake's `ManyModelInference`): the data is
 * partitioned like the training data (`partitionBy`, or one file per partition), and each
 * partition's function `(data, model, context)` gets the model trained on the partition of the
 * same id, loaded through the serde once per worker. What it returns — an Arrow table or an array
 * of records — is saved as the partition's `predictions.parquet` with a `model_run_id` column
 * (queryable with `run.predictions()` and `run.run.query`), and, with `predictionsTable`, appended
 * to a table of the session database.
 *
 * @example
 * ```ts
 * // score.ts
 * export { serde } from './train.js';
 * export default async function score(data: DataConnector, model: SimpleLinearRegression) {
 *   const { date, x } = await data.toColumns();
 *   return Array.from(x, (value, i) => ({ date: date[i], predicted: model.predict(value) }));
 * }
 * // main.ts
 * const inference = new ManyModelInference('./score.ts', { stage: './stage', trainingRunId: 'train-v1' });
 * const run = await inference.run({ partitionBy: 'symbol', source: "SELECT * FROM 'new.csv'", runId: 'score-v1' });
 * await run.wait();
 * console.log((await run.predictions()).numRows);
 * ```
 */
export class ManyModelInference<M = unknown> {
  private readonly module: ModuleReference;
  private readonly dpfOptions: DPFOptions;
  private readonly given: ModelSerde<M> | undefined;
  private readonly trainingRuns: readonly string[];
  private readonly policy: MissingModelPolicy;
  private readonly modelRuns: Readonly<Record<string, string>>;
  private readonly predictionsTable: string | null;
  private readonly cacheModels: number;

  /**
   * @param module The module whose export (default, or `{ module, exportName }`) is the inference
   *   function `(data, model, context) => predictions`.
   */
  constructor(module: PartitionModule, options: ManyModelInferenceOptions<M>) {
    this.module = resolveModuleReference(module);
    const { serde, trainingRunId, onMissingModel, modelRuns, predictionsTable, cacheModels, ...dpfOptions } = checkOptionsObject(options, 'options', OPTION_KEYS) as unknown as ManyModelInferenceOptions<M>;
    this.given = serde === undefined ? undefined : (checkSerde(serde, 'serde') as ModelSerde<M>);
    this.trainingRuns = checkTrainingRuns(trainingRunId);
    this.policy = checkPolicy(onMissingModel ?? 'error');
    this.modelRuns = checkModelRuns(modelRuns ?? {}, this.trainingRuns);
    this.predictionsTable = predictionsTable === undefined ? null : checkTableName(predictionsTable);
    this.cacheModels = cacheModels === undefined ? 16 : checkInteger(cacheModels, 'cacheModels', 0);
    this.dpfOptions = dpfOptions;
    if (this.predictionsTable !== null && dpfOptions.sessionDatabase === undefined && (dpfOptions.queue !== undefined || isS3Location(dpfOptions.stage))) {
      throw new InvalidOptionError(
        'predictionsTable',
        `a ${dpfOptions.queue !== undefined ? 'queue run' : 'run on an S3 stage'} has no session database by default to append predictions to; pass sessionDatabase (a postgres:// URL its workers share), or leave predictionsTable out`,
      );
    }
    // Checks the stage and the other options now, as new DPF() does.
    new DPF(module, dpfOptions);
  }

  /** Scores each distinct value of `partitionBy` with its model (DataFrame mode; options as {@link DPF.run}). */
  async run(options: DataFrameRunOptions): Promise<InferenceRun> {
    return new InferenceRun(await (await this.prepare()).run(options));
  }

  /** Scores each file with the model of the training partition of the same id (stage mode; options as {@link DPF.runFromStage}). */
  async runFromStage(options: StageRunOptions): Promise<InferenceRun> {
    return new InferenceRun(await (await this.prepare()).runFromStage(options));
  }

  /**
   * Checks the training runs — each a finished ManyModelTraining run on this stage, with the same
   * model file, and the chosen and fallback partitions among their DONE ones — orders them newest
   * first, and finds how workers get the serde. Done for every run: the training runs may have
   * changed since the last.
   */
  private async prepare(): Promise<DPF> {
    const runs = await Promise.all(this.trainingRuns.map((runId) => trainingRun(runId, this.dpfOptions.stage)));
    const filenames = new Set(runs.map((run) => run.serde.filename));
    if (filenames.size > 1) {
      throw new InvalidOptionError('trainingRunId', `the training runs saved their models under different names (${runs.map((run) => `${run.run.runId}: ${run.serde.filename}`).join(', ')}); score with runs of one serde`);
    }
    for (const [partitionId, runId] of Object.entries(this.modelRuns)) hasModel(runs.find((run) => run.run.runId === runId)!.run, partitionId, `modelRuns["${partitionId}"]`);
    if (typeof this.policy === 'object') {
      const { fallback } = this.policy;
      const chosen = this.modelRuns[fallback];
      const candidates = runs.filter((run) => chosen === undefined || run.run.runId === chosen);
      if (!candidates.some((run) => run.run.partitionDetails(fallback)?.status === 'DONE')) hasModel(candidates[0]!.run, fallback, 'onMissingModel.fallback');
    }
    const exports = moduleExports(await loadModuleExports(this.module));
    const serde = this.serdeReference(exports, runs[0]!);
    const newestFirst = [...runs].sort((a, b) => b.run.times.createdAt.getTime() - a.run.times.createdAt.getTime()).map((run) => run.run.runId);
    const options: InferenceLayerOptions = {
      serde,
      trainingRuns: newestFirst,
      modelRuns: { ...this.modelRuns },
      onMissingModel: this.policy,
      predictionsTable: this.predictionsTable,
      cacheModels: this.cacheModels,
    };
    return DPF.layered({ module: this.module.url, exportName: this.module.exportName }, this.dpfOptions, { module: INFERENCE_LAYER, options: options as unknown as JsonValue });
  }

  /** The serde workers load models with: the one given, the inference module's, else the training runs' built-in. */
  private serdeReference(exports: Readonly<Record<string, unknown>>, trained: { serde: SerdeReference; module: string }): SerdeReference {
    const path = fileURLToPath(this.module.url);
    const training = trained.serde;
    if (this.given === undefined && exports.serde === undefined) {
      if (training.kind === 'export') {
        throw new InvalidOptionError(
          'serde',
          `the training runs saved their models with the serde exported as "${training.exportName}" from ${trained.module}, which workers of this run cannot see: ` +
            `export it from ${path} too (export { ${training.exportName === 'serde' ? 'serde' : `${training.exportName} as serde`} } from '${relativeImport(path, trained.module)}'), or pass the serde`,
        );
      }
      return training;
    }
    const { reference } = serdeReference(this.given, exports, path);
    if (reference.filename !== training.filename) {
      throw new InvalidOptionError('serde', `loads "${reference.filename}", and the training runs saved their models as "${training.filename}"; give the serde they were trained with`);
    }
    return reference;
  }
}

/** A {@link ManyModelInference} run: the {@link DPFRun} (`run`), its predictions, and which model scored each partition. */
export class InferenceRun extends LayerRun {
  /**
   * Every DONE partition's predictions as one table: `partition_id`, the function's columns, and
   * `model_run_id`. `sql` may query them as the view `predictions` (and `partitions`, as in
   * {@link DPFRun.query}).
   * @defaultValue `sql`: `SELECT * FROM predictions`
   */
  predictions(sql = 'SELECT * FROM predictions'): Promise<Table> {
    return this.run.query(sql, { predictions: PREDICTIONS_ARTIFACT });
  }

  /**
   * Which model scored a DONE partition: the training run and partition it came from (`fallback`
   * when it was the fallback's); all null when the partition was skipped for having none.
   * Undefined for a partition not DONE.
   */
  async modelSource(partitionId: string): Promise<ModelSource | undefined> {
    const details = await this.run.currentDetails(partitionId);
    if (details?.status !== 'DONE') return undefined;
    return (await details.artifacts.get(MODEL_SOURCE_ARTIFACT)) as ModelSource;
  }

  /** An inference run stored on a stage, from any process. */
  static async restoreFrom(runId: string, stage: string | URL): Promise<InferenceRun> {
    return new InferenceRun(await restoreLayerRun(runId, stage, INFERENCE_LAYER, 'ManyModelInference'));
  }
}

/** A finished training run and the serde it recorded. */
async function trainingRun(runId: string, stage: string | URL): Promise<{ run: DPFRun; serde: SerdeReference; module: string }> {
  const run = await restoreLayerRun(runId, stage, TRAINING_LAYER, 'ManyModelTraining', 'trainingRunId');
  const layer = run.called!.layer!;
  if (run.status === RunStatus.IN_PROGRESS) {
    throw new InvalidOptionError(
      'trainingRunId',
      `training run "${runId}" is still in progress, so its set of models may change under this run; wait for it to end (or resume it, or cancel it, if its driver is gone)`,
    );
  }
  return { run, serde: (layer.options as unknown as TrainingLayerOptions).serde, module: fileURLToPath(run.called!.url) };
}

/** Asserts `partitionId` of the training run has a model (is DONE), naming `option` when not. */
function hasModel(run: DPFRun, partitionId: string, option: string): void {
  const details = run.partitionDetails(partitionId);
  if (details?.status === 'DONE') return;
  throw new InvalidOptionError(
    option,
    details === undefined
      ? `training run "${run.runId}" has no partition "${partitionId}"; name one of its partitions (run.getPartitionDetails() keys)`
      : `partition "${partitionId}" of training run "${run.runId}" is ${details.status}, so it has no model; retrain it first`,
  );
}

function checkTrainingRuns(value: unknown): readonly string[] {
  const ids = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => typeof id !== 'string' || id === '')) {
    throw new InvalidOptionError('trainingRunId', `expected the id of a ManyModelTraining run on this stage, or a non-empty array of them, got ${describe(value)}`);
  }
  if (new Set(ids).size !== ids.length) throw new InvalidOptionError('trainingRunId', `names a run twice (${ids.join(', ')}); give each training run once`);
  return ids as string[];
}

function checkTableName(value: unknown): string {
  const name = checkString(value, 'predictionsTable');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new InvalidOptionError('predictionsTable', `"${name}" is not a plain table name; use letters, digits and _ (the table goes to the session database's default schema)`);
  }
  return name;
}

function checkPolicy(value: unknown): MissingModelPolicy {
  if (value === 'error' || value === 'skip') return value;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const { fallback } = checkOptionsObject(value, 'onMissingModel', ['fallback']);
    if (typeof fallback === 'string' && fallback !== '') return { fallback };
  }
  throw new InvalidOptionError('onMissingModel', `expected 'error', 'skip' or { fallback: '<partition id of a training run>' }, got ${describe(value)}`);
}

function checkModelRuns(value: unknown, trainingRuns: readonly string[]): Readonly<Record<string, string>> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionError('modelRuns', `expected an object of partition id → training run id, such as { 'store-7': 'train-v1' }, got ${describe(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const [partitionId, runId] of Object.entries(record)) {
    if (typeof runId !== 'string' || !trainingRuns.includes(runId)) {
      throw new InvalidOptionError(`modelRuns["${partitionId}"]`, `expected one of the training runs (${trainingRuns.join(', ')}), got ${describe(runId)}; add the run to trainingRunId`);
    }
  }
  return record as Record<string, string>;
}

/** How the module at `from` imports the one at `to` (`./train.js`). */
function relativeImport(from: string, to: string): string {
  const path = relative(dirname(from), to).split('\\').join('/');
  return path.startsWith('.') ? path : `./${path}`;
}
