import type { DataConnector } from '../data/data-connector.js';
import { ModelSerdeError } from '../errors.js';
import type { PartitionContext } from '../execute/partition-context.js';
import type { PartitionFunction } from '../execute/partition-module.js';
import type { JsonValue } from '../model/json-value.js';
import { builtinOf, describeModel, resolveSerde, type SerdeReference } from './model-serde.js';

/** The options a ManyModelTraining run records with its module (LayerReference.options). */
export interface TrainingLayerOptions {
  serde: SerdeReference;
}

/** Where a run names this layer (ModuleReference.layer.module). */
export const TRAINING_LAYER = 'models/training-layer';

/**
 * In every worker of a training run: calls the training function, then saves the model it
 * returned as the partition's model artifact through the serde — in the attempt, so a failed
 * attempt keeps no model and a DONE partition always has one.
 */
export function wrapPartitionFunction(fn: PartitionFunction, options: JsonValue, exports: Readonly<Record<string, unknown>>): PartitionFunction {
  const { serde: reference } = options as unknown as TrainingLayerOptions;
  const serde = resolveSerde(reference, exports, 'the training module');
  const builtin = builtinOf(serde);
  return async (data: DataConnector, context: PartitionContext) => {
    const model = await fn(data, context);
    if (model === undefined || model === null) {
      throw new ModelSerdeError(
        `the training function returned ${describeModel(model)} for partition "${context.partitionId}": return the trained model, which dpf saves as ${serde.filename} through the serde`,
      );
    }
    if (builtin !== undefined) await context.uploadToStage(builtin.toArtifact(model), serde.filename);
    else await context.uploadToStage(model, serde.filename, { writeFunction: (value, path) => serde.save(value, path) });
  };
}
