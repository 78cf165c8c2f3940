import type { DataConnector, PartitionContext } from 'dpf';
import { TrendEnsemble } from './ensemble.js';
export { serde } from './ensemble.js';

/** Trains one symbol's model; dpf saves what it returns through `serde`. `args.trees` sizes the forest. */
export default async function train(data: DataConnector, context: PartitionContext<{ trees: number }>) {
  const features = await data.toFeatures({ features: ['t', 'month'], target: 'price' });
  const model = TrendEnsemble.trainOn(features.toArrays(), features.targetArray()!, context.args.trees);
  await context.uploadToStage({ rows: features.numRows, slope: model.trend.slope, intercept: model.trend.intercept }, 'metrics.json');
  return model;
}
