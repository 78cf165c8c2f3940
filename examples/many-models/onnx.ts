/**
 * The same per-symbol models as ONNX files: training fits an mljs multivariate linear regression
 * and returns its ONNX bytes (bytesSerde keeps them as `model.onnx`); scoring runs them through
 * onnxruntime-node, whose loader makes each worker's InferenceSession once.
 */
import type { DataConnector } from 'dpf';
import { bytesSerde } from 'dpf';
import MultivariateLinearRegression from 'ml-regression-multivariate-linear';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { linearModelToOnnx } from '../models/linear-onnx.js';

export const serde = bytesSerde({ filename: 'model.onnx', loader: (bytes) => InferenceSession.create(bytes, { intraOpNumThreads: 1 }) });

export async function train(data: DataConnector): Promise<Uint8Array> {
  const features = await data.toFeatures({ features: ['t', 'month'], target: 'price' });
  const fitted = new MultivariateLinearRegression(features.toArrays(), features.targetArray()!.map((y) => [y]));
  // mljs keeps one row of weights per feature, then the intercept's.
  return linearModelToOnnx([fitted.weights[0]![0]!, fitted.weights[1]![0]!], fitted.weights[2]![0]!, { elementType: 'float64' });
}

export async function score(data: DataConnector, session: InferenceSession) {
  const features = await data.toFeatures({ features: ['t', 'month'], target: 'price' });
  const { Y } = await session.run({ X: new Tensor('float64', features.data, [features.numRows, 2]) });
  const predicted = Y!.data as Float64Array;
  return Array.from(predicted, (value, i) => ({ t: features.data[i * 2], predicted: value }));
}
