import type { DataConnector } from '../data/data-connector.js';
import { ArtifactNotFoundError, ModelNotFoundError } from '../errors.js';
import type { PartitionContext } from '../execute/partition-context.js';
import type { PartitionFunction } from '../execute/partition-module.js';
import type { JsonValue } from '../model/json-value.js';
import { ModelCache } from './model-cache.js';
import { builtinOf, type ModelSerde, resolveSerde, type SerdeReference } from './model-serde.js';
import { MODEL_SOURCE_ARTIFACT, type ModelSource, PREDICTIONS_ARTIFACT, predictionsTable, replacePredictions } from './predictions.js';

/**
 * The function of a ManyModelInference run: a partition's data, the model trained for it, and the
 * context; returns its predictions (an Arrow table or an array of records), or nothing when it
 * writes them itself.
 */
export type InferenceFunction<M = unknown, Args = unknown> = (data: DataConnector, model: M, context: PartitionContext<Args>) => unknown;

/** What a partition with no model does (see ManyModelInferenceOptions.onMissingModel). */
export type MissingModelPolicy = 'error' | 'skip' | { fallback: string };

/** The options a ManyModelInference run records with its module (LayerReference.options). */
export interface InferenceLayerOptions {
  serde: SerdeReference;
  /** The training runs to take models from, newest first. */
  trainingRuns: string[];
  /** Partitions whose model comes from a chosen training run. */
  modelRuns: Record<string, string>;
  onMissingModel: MissingModelPolicy;
  /** The table every partition's predictions are also appended to, or null. */
  predictionsTable: string | null;
  /** Models kept per worker. */
  cacheModels: number;
}

/** Where a run names this layer (ModuleReference.layer.module). */
export const INFERENCE_LAYER = 'models/inference-layer';

/**
 * In every worker of an inference run: finds the partition's model — the newest training run that
 * has the partition DONE, or the one `modelRuns` names, else the missing-model policy — loads it
 * through the serde (once per worker: models are cached across partitions), calls the inference
 * function with it, and saves what it returns as `predictions.parquet` with a `model_run_id`
 * column, and which model scored the partition as `model-source.json`, in the attempt.
 */
export function wrapPartitionFunction(fn: PartitionFunction, options: JsonValue, exports: Readonly<Record<string, unknown>>): PartitionFunction {
  const layer = options as unknown as InferenceLayerOptions;
  const serde = resolveSerde(layer.serde, exports, 'the inference module');
  const score = fn as unknown as InferenceFunction;
  const models = new ModelFinder(serde, layer);
  return async (data: DataConnector, context: PartitionContext) => {
    const found = await models.find(context);
    let table: Awaited<ReturnType<typeof predictionsTable>>;
    if (found === undefined) {
      context.log(`no training run has a model for partition "${context.partitionId}" (${layer.trainingRuns.join(', ')}); skipped, as onMissingModel: 'skip' says`);
      await context.uploadToStage({ runId: null, partitionId: null, fallback: false } satisfies ModelSource, MODEL_SOURCE_ARTIFACT);
    } else {
      const predictions = await score(data, found.model, context);
      await context.uploadToStage(found.source, MODEL_SOURCE_ARTIFACT);
      table = await predictionsTable(predictions, found.source.runId!, context.partitionId);
      if (table !== undefined) await context.uploadToStage(table, PREDICTIONS_ARTIFACT);
    }
    const name = layer.predictionsTable;
    if (name !== null) await context.withSession((session) => replacePredictions(session, name, context.runId, context.partitionId, table));
  };
}

/** A worker's way to a partition's model: which training run has it, loaded once per worker. */
class ModelFinder {
  private readonly cache: ModelCache<unknown>;

  constructor(
    private readonly serde: ModelSerde,
    private readonly layer: InferenceLayerOptions,
  ) {
    this.cache = new ModelCache(layer.cacheModels);
  }

  /** The model for the calling partition and where it came from; undefined when it has none and the policy is 'skip'. */
  async find(context: PartitionContext): Promise<{ model: unknown; source: ModelSource } | undefined> {
    const own = await this.lookup(context, context.partitionId);
    if (own.found !== undefined) return own.found;
    const policy = this.layer.onMissingModel;
    if (policy === 'skip') return undefined;
    if (policy !== 'error') {
      const fallback = await this.lookup(context, policy.fallback);
      if (fallback.found !== undefined) return { model: fallback.found.model, source: { ...fallback.found.source, fallback: true } };
      throw new ModelNotFoundError(`partition "${context.partitionId}" has no model, and neither has its fallback "${policy.fallback}": ${fallback.why}`);
    }
    throw new ModelNotFoundError(
      `no model for partition "${context.partitionId}": ${own.why}. Train it (ManyModelTraining with partitionIds: ["${context.partitionId}"] in a new run, then add that run to trainingRunId), ` +
        "or set onMissingModel: 'skip' or { fallback: '<partition>' }",
    );
  }

  /** `partitionId`'s model in the training runs it may come from, newest first; or why none has it. */
  private async lookup(context: PartitionContext, partitionId: string): Promise<{ found?: { model: unknown; source: ModelSource }; why: string }> {
    const chosen = this.layer.modelRuns[partitionId];
    const runs = chosen === undefined ? this.layer.trainingRuns : [chosen];
    const reasons: string[] = [];
    for (const runId of runs) {
      try {
        const model = await this.cache.get(`${runId}\u0000${partitionId}`, () => this.load(context, runId, partitionId));
        return { found: { model, source: { runId, partitionId, fallback: false } }, why: '' };
      } catch (error) {
        // Not DONE in this run, or not one of its partitions: the next (older) run may have it.
        if (!(error instanceof ArtifactNotFoundError)) throw error;
        reasons.push(error.message.replace(/^downloadFromStage: /, ''));
      }
    }
    return { why: reasons.join('; ') };
  }

  private async load(context: PartitionContext, runId: string, partitionId: string): Promise<unknown> {
    const builtin = builtinOf(this.serde);
    if (builtin !== undefined) return builtin.fromArtifact(await context.downloadFromStage(this.serde.filename, { runId, partitionId }));
    return context.downloadFromStage(this.serde.filename, { runId, partitionId, readFunction: (path) => this.serde.load(path) });
  }
}
