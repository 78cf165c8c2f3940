/**
 * One symbol's model: the mean of a linear trend over time and a random forest over (time,
 * month) — the ensemble-per-partition of Snowflake's many-model examples, with mljs models.
 * It saves as JSON (`toJSON`) and loads back through `serde`.
 */
import { jsonSerde } from 'dpf';
import { RandomForestRegression } from 'ml-random-forest';
import { SimpleLinearRegression } from 'ml-regression-simple-linear';

export class TrendEnsemble {
  constructor(
    readonly trend: SimpleLinearRegression,
    readonly forest: RandomForestRegression,
  ) {}

  /** `rows`: [t, month] per row (t: months since Jan 2000); `price`: the target. */
  static trainOn(rows: number[][], price: number[], trees: number): TrendEnsemble {
    const forest = new RandomForestRegression({ nEstimators: trees, seed: 42, maxFeatures: 1.0, noOOB: true, treeOptions: { maxDepth: 4 } });
    forest.train(rows, price);
    return new TrendEnsemble(
      new SimpleLinearRegression(rows.map(([t]) => t!), price),
      forest,
    );
  }

  predict(rows: number[][]): number[] {
    const forest = this.forest.predict(rows);
    return rows.map(([t], i) => (this.trend.predict(t!) + forest[i]!) / 2);
  }

  toJSON(): { trend: ReturnType<SimpleLinearRegression['toJSON']>; forest: ReturnType<RandomForestRegression['toJSON']> } {
    return { trend: this.trend.toJSON(), forest: this.forest.toJSON() };
  }

  static load(json: ReturnType<TrendEnsemble['toJSON']>): TrendEnsemble {
    return new TrendEnsemble(SimpleLinearRegression.load(json.trend), RandomForestRegression.load(json.forest));
  }
}

/** Saves each model as model.json; workers and getModel() load it back as a TrendEnsemble. */
export const serde = jsonSerde({ loader: TrendEnsemble });
