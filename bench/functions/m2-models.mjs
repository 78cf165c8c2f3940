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
