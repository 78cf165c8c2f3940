// M2 inference with a shared model: one random forest (ml-random-forest, a JSON of some hundred KB) that scores every partition.
import { jsonSerde } from 'dpf';
import { RandomForestRegression } from 'ml-random-forest';

/** model.json, loaded back as a live forest (RandomForestRegression.load): parsing and rebuilding the trees is the load's cost. */
export const serde = jsonSerde({ loader: RandomForestRegression });

function features(columns) {
  const { a, b, c } = columns;
  return Array.from(a, (value, i) => [value, b[i], c[i]]);
}

/** Trains the forest on the partition's rows (y on a, b, c); `args.trees` trees of depth 6, a fixed seed. */
export default async function train(data, context) {
  const columns = await data.toColumns();
  const forest = new RandomForestRegression({ nEstimators: context.args.trees, seed: 3, maxFeatures: 1.0, replacement: true, useSampleBagging: true, noOOB: true, treeOptions: { maxDepth: 6 } });
  forest.train(features(columns), Array.from(columns.y));
  return forest;
}

/** Scores the partition's rows with the forest. */
export async function score(data, model) {
  return Array.from(model.predict(features(await data.toColumns())), (predicted) => ({ predicted }));
}
