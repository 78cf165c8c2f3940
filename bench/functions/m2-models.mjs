// M2: one small model per partition — an ordinary least-squares line (ml-regression-simple-linear) of y on x.
import { jsonSerde } from 'dpf';
import { SimpleLinearRegression } from 'ml-regression-simple-linear';

/** How ManyModelTraining saves the models and loads them back live: model.json, SimpleLinearRegression.load. */
export const serde = jsonSerde({ loader: SimpleLinearRegression });

/** The training function of ManyModelTraining: returns the model, dpf saves it through the serde. */
export default async function train(data) {
  const { x, y } = await data.toColumns();
  return new SimpleLinearRegression(x, y);
}

/** The same training in a plain DPF function, saving the model by hand: what the layer replaces. */
export async function trainByHand(data, context) {
  const { x, y } = await data.toColumns();
  await context.uploadToStage(new SimpleLinearRegression(x, y), 'model.json');
}

/** The inference function of ManyModelInference: the partition's model scores its rows; dpf saves them as predictions.parquet. */
export async function score(data, model) {
  const { x } = await data.toColumns();
  return Array.from(x, (value) => ({ x: value, predicted: model.predict(value) }));
}

/** The same scoring in a plain DPF function: the model loaded by hand from the training run, the same predictions saved by hand. */
export async function scoreByHand(data, context) {
  const { trainingRunId } = context.args;
  const model = SimpleLinearRegression.load(await context.downloadFromStage('model.json', { runId: trainingRunId, partitionId: context.partitionId }));
  const { x } = await data.toColumns();
  await context.uploadToStage(Array.from(x, (value) => ({ x: value, predicted: model.predict(value), model_run_id: trainingRunId })), 'predictions.parquet');
}
