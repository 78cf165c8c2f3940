import type { DataConnector } from 'dpf';
import type { TrendEnsemble } from './ensemble.js';
export { serde } from './ensemble.js';

/** Scores one symbol's rows with its model; the records returned become predictions.parquet. */
export default async function score(data: DataConnector, model: TrendEnsemble) {
  const features = await data.toFeatures({ features: ['t', 'month'], target: 'price' });
  const rows = features.toArrays();
  const price = features.targetArray()!;
  return model.predict(rows).map((predicted, i) => ({ t: rows[i]![0], price: price[i], predicted }));
}
