import { statSync } from 'node:fs';
import { join } from 'node:path';
import { DPF, type DPFRun, ManyModelInference, ManyModelTraining, RunStatus, type TrainingRun } from 'dpf';
import { SimpleLinearRegression } from 'ml-regression-simple-linear';
import { type BenchOptions, duckdb, FUNCTIONS, freshDir, median, type Result, seconds } from '../harness.js';

const THREADS = 2;
const ROWS_PER_PARTITION = 30;
const EXECUTION = { availableCpus: THREADS };

/** M2's training data: `partitions` keys of 30 rows, y a line of x per key (slope and intercept from the key) plus a fixed wobble. */
function trainingSource(partitions: number): string {
  return `SELECT i % ${partitions} AS k, (i // ${partitions})::DOUBLE AS x,
                 ((i % ${partitions}) % 7 + 1) * (i // ${partitions}) + (i % ${partitions}) / 10 + sin(i)::DOUBLE AS y
          FROM range(${partitions * ROWS_PER_PARTITION}) t(i)`;
}

/** New rows for the same keys to score: x of 100..129. */
function scoringSource(partitions: number): string {
  return `SELECT i % ${partitions} AS k, (100 + i // ${partitions})::DOUBLE AS x FROM range(${partitions * ROWS_PER_PARTITION}) t(i)`;
}

/** The forest's training rows (one partition, "global"), and new rows of keys that have no model of their own, to score with it. */
function forestTrainingSource(rows: number): string {
  return `SELECT 'global' AS g, sin(i) * 10 AS a, cos(i * 0.7) * 5 AS b, (i % 13)::DOUBLE AS c,
                 2 * sin(i) * 10 - cos(i * 0.7) * 5 + (i % 13) * (i % 13) * 0.1 + sin(i * 3) AS y
          FROM range(${rows}) t(i)`;
}
function forestScoringSource(partitions: number, rowsPerPartition: number): string {
  return `SELECT 'new-' || (i % ${partitions}) AS k, sin(i + 0.5) * 10 AS a, cos(i * 0.3) * 5 AS b, (i % 11)::DOUBLE AS c
          FROM range(${partitions * rowsPerPartition}) t(i)`;
}

/**
 * Runs `a` and `b` `runs` times each after one warm-up of each, interleaved with the order
 * alternating, so the shared machine's drift hits both sides alike. Gets the run's number
 * (0 for the warm-up), returns every measured sample of each side.
 */
async function interleaved<A, B>(runs: number, a: (run: number) => Promise<A>, b: (run: number) => Promise<B>): Promise<{ a: A[]; b: B[] }> {
  const samples = { a: [] as A[], b: [] as B[] };
  for (let run = 0; run <= runs; run++) {
    let first: A | undefined;
    if (run % 2 === 1) first = await a(run);
    const second = await b(run);
    const sample = first ?? (await a(run));
    if (run === 0) continue;
    samples.a.push(sample);
    samples.b.push(second);
  }
  return samples;
}

/** Seconds `fn` takes, and what it returned. */
async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - started) / 1000, value };
}

/** Microseconds per partition of the median paired difference `a − b` (seconds). */
function pairedPerPartition(a: readonly number[], b: readonly number[], partitions: number): number {
  return (median(a.map((value, index) => value - b[index]!)) / partitions) * 1e6;
}

function range(values: readonly number[]): string {
  return `${Math.min(...values).toFixed(1)} to ${Math.max(...values).toFixed(1)}`;
}

/**
 * M2: many models, on 2,000 partitions of 30 rows, 2 workers. Each figure is a median of paired
 * differences, the two sides interleaved in the same bench run.
 *
 * - `M2` (training): each partition trains a least-squares line (ml-regression-simple-linear);
 *   ManyModelTraining saves the model it returns through the serde (`jsonSerde` with the model's
 *   loader → model.json), then all 2,000 are read back as live models (`TrainingRun.models()`).
 *   Reference: a plain `dpf.run` whose function does the same training and saves the same model
 *   with `context.uploadToStage(model, 'model.json')`, its models read back by hand
 *   (`details.artifacts.get('model.json')`, `SimpleLinearRegression.load`). Figure: the layer's
 *   overhead per model.
 * - `M2 infer`: new rows of the same 2,000 keys, each partition scored by its own model with
 *   ManyModelInference (predictions.parquet). Reference: a plain `dpf.run` that loads the model by
 *   hand (`context.downloadFromStage('model.json', { runId, partitionId })`) and saves the same
 *   predictions. Figure: the layer's overhead per partition.
 * - `M2 cache`: 2,000 partitions with no model of their own, all scored by one fallback model
 *   (`onMissingModel: { fallback: 'global' }`, a random forest of some hundred KB of JSON), with
 *   the per-worker model cache (`cacheModels: 16`, the default) and without (`cacheModels: 0`,
 *   loading per partition).
 */
export async function m2(options: BenchOptions): Promise<Result> {
  const partitions = options.smoke ? 100 : 2_000;
  const stage = await freshDir('stage-m2');
  const module = join(FUNCTIONS, 'm2-models.mjs');

  // Training.
  const training = new ManyModelTraining<SimpleLinearRegression>(module, { stage });
  const plainTraining = new DPF({ module, exportName: 'trainByHand' }, { stage });
  const trainOptions = (runId: string) => ({ partitionBy: 'k', source: trainingSource(partitions), runId, onExistingArtifacts: 'overwrite' as const, executionOptions: EXECUTION });
  const trainings = await interleaved(
    options.runs,
    async (run) => {
      const trained = await timed(async () => {
        const handle = await training.run(trainOptions(`m2-train-${run}`));
        if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error(`M2 training run m2-train-${run} failed`);
        return handle;
      });
      const loaded = await timed(async () => {
        let models = 0;
        for await (const { model } of trained.value.models()) if (Number.isFinite(model.predict(1))) models++;
        if (models !== partitions) throw new Error(`M2: ${models} live models from ManyModelTraining, not ${partitions}`);
      });
      return { train: trained.seconds, load: loaded.seconds, run: trained.value };
    },
    async (run) => {
      const trained = await timed(async () => {
        const handle = await plainTraining.run(trainOptions(`m2-plain-${run}`));
        if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error(`M2 plain training run m2-plain-${run} failed`);
        return handle;
      });
      const loaded = await timed(async () => {
        let models = 0;
        for (const details of (await trained.value.getProgress()).DONE) if (Number.isFinite(SimpleLinearRegression.load((await details.artifacts.get('model.json')) as never).predict(1))) models++;
        if (models !== partitions) throw new Error(`M2: ${models} live models from the plain run, not ${partitions}`);
      });
      return { train: trained.seconds, load: loaded.seconds, run: trained.value };
    },
  );
  const trainedRun: TrainingRun<SimpleLinearRegression> = trainings.a.at(-1)!.run;
  const worst = await checkModels(trainedRun, trainings.b.at(-1)!.run, partitions);

  // Inference, each partition with its own model.
  const inference = new ManyModelInference({ module, exportName: 'score' }, { stage, trainingRunId: trainedRun.runId });
  const plainInference = new DPF({ module, exportName: 'scoreByHand' }, { stage });
  const scoreOptions = (runId: string) => ({ partitionBy: 'k', source: scoringSource(partitions), runId, onExistingArtifacts: 'overwrite' as const, executionOptions: EXECUTION });
  const scored: { layer?: DPFRun; plain?: DPFRun } = {};
  /** A scoring run's seconds: until `run()` returns (`planned`), and until `wait()` does (`total`). */
  const scoring = async (side: 'layer' | 'plain', start: () => Promise<{ wait(): Promise<RunStatus>; run?: DPFRun }>) => {
    const started = performance.now();
    const handle = await start();
    const planned = (performance.now() - started) / 1000;
    if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error(`M2: an inference run (${side}) failed`);
    scored[side] = handle.run ?? (handle as DPFRun);
    return { planned, total: (performance.now() - started) / 1000 };
  };
  const scorings = await interleaved(
    options.runs,
    (run) => scoring('layer', () => inference.run(scoreOptions(`m2-score-${run}`))),
    (run) => scoring('plain', () => plainInference.run({ ...scoreOptions(`m2-score-plain-${run}`), args: { trainingRunId: trainedRun.runId } })),
  );
  await checkPredictions(scored.layer!, scored.plain!, partitions);

  // Inference with one shared model: the fallback forest, with the model cache and without.
  const forestModule = join(FUNCTIONS, 'm2-forest.mjs');
  const forestTraining = await new ManyModelTraining(forestModule, { stage }).run({
    partitionBy: 'g',
    source: forestTrainingSource(options.smoke ? 300 : 2_000),
    runId: 'm2-forest',
    args: { trees: options.smoke ? 4 : 20 },
    onExistingArtifacts: 'overwrite',
  });
  if ((await forestTraining.wait()) !== RunStatus.SUCCESS) throw new Error('M2: training the forest failed');
  const forestBytes = statSync(join(stage, 'm2-forest', 'global', 'model.json')).size;
  const forestRows = 10;
  const forestScoring = (cacheModels: number) => {
    const forest = new ManyModelInference({ module: forestModule, exportName: 'score' }, { stage, trainingRunId: 'm2-forest', onMissingModel: { fallback: 'global' }, cacheModels });
    return async (run: number) => {
      const handle = await forest.run({
        partitionBy: 'k',
        source: forestScoringSource(partitions, forestRows),
        runId: `m2-forest-cache${cacheModels}-${run}`,
        onExistingArtifacts: 'overwrite',
        executionOptions: EXECUTION,
      });
      if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error(`M2 forest inference (cacheModels ${cacheModels}) failed`);
      const predictions = await handle.predictions('SELECT count(*)::INTEGER AS n, count(DISTINCT partition_id)::INTEGER AS partitions FROM predictions');
      const { n, partitions: scoredPartitions } = predictions.toArray()[0].toJSON() as { n: number; partitions: number };
      if (n !== partitions * forestRows || scoredPartitions !== partitions) throw new Error(`M2: the forest scored ${n} rows of ${scoredPartitions} partitions`);
    };
  };
  const cached = forestScoring(16);
  const uncached = forestScoring(0);
  const caching = await interleaved(
    options.runs,
    async (run) => (await timed(() => cached(run))).seconds,
    async (run) => (await timed(() => uncached(run))).seconds,
  );

  // The figures.
  const total = (sample: { train: number; load: number }) => sample.train + sample.load;
  const trainingOverhead = pairedPerPartition(trainings.a.map(total), trainings.b.map(total), partitions);
  const trainOverhead = pairedPerPartition(trainings.a.map((sample) => sample.train), trainings.b.map((sample) => sample.train), partitions);
  const loadOverhead = pairedPerPartition(trainings.a.map((sample) => sample.load), trainings.b.map((sample) => sample.load), partitions);
  const trainingDifferences = trainings.a.map((sample, index) => ((total(sample) - total(trainings.b[index]!)) / partitions) * 1e6);
  const inferenceOverhead = pairedPerPartition(scorings.a.map((sample) => sample.total), scorings.b.map((sample) => sample.total), partitions);
  const inferenceDifferences = scorings.a.map((sample, index) => ((sample.total - scorings.b[index]!.total) / partitions) * 1e6);
  const saved = pairedPerPartition(caching.b, caching.a, partitions);
  const part = (samples: readonly { train: number; load: number }[], key: 'train' | 'load') => seconds(median(samples.map((sample) => sample[key])));
  return {
    id: 'M2',
    workload: `${partitions.toLocaleString('en')} partitions of ${ROWS_PER_PARTITION} rows, each training a least-squares line: ManyModelTraining (jsonSerde, model.json), then every model loaded back live`,
    dpf: median(trainings.a.map(total)),
    reference: median(trainings.b.map(total)),
    referenceName: 'plain dpf.run, the same training saved by hand with uploadToStage, loaded by hand',
    figure: `${trainingOverhead.toFixed(1)} µs/model over the plain run (train ${trainOverhead.toFixed(1)}, load ${loadOverhead.toFixed(1)}); equal to DuckDB's regression to ${worst.toExponential(1)}`,
    target: '≤ 100 µs/model',
    met: trainingOverhead <= 100,
    notes: [
      `layer: train ${part(trainings.a, 'train')}, load ${part(trainings.a, 'load')}; plain: train ${part(trainings.b, 'train')}, load ${part(trainings.b, 'load')} (medians, ${THREADS} workers); ` +
        `the paired differences ranged ${range(trainingDifferences)} µs/model`,
    ],
    peers: [
      {
        id: 'M2 infer',
        workload: `new rows (${ROWS_PER_PARTITION} per key) of the same ${partitions.toLocaleString('en')} keys, each scored by its own model: ManyModelInference → predictions.parquet`,
        dpf: median(scorings.a.map((sample) => sample.total)),
        reference: median(scorings.b.map((sample) => sample.total)),
        referenceName: "plain dpf.run loading the model by hand (downloadFromStage('model.json', { runId, partitionId })), the same predictions",
        figure: `${inferenceOverhead.toFixed(1)} µs/partition over the plain run; the same predictions`,
        target: 'report',
        met: undefined,
        notes: [
          `until run() returns: ManyModelInference ${seconds(median(scorings.a.map((sample) => sample.planned)))} (it restores and checks the training run), plain ${seconds(median(scorings.b.map((sample) => sample.planned)))} (medians); ` +
            `the paired differences ranged ${range(inferenceDifferences)} µs/partition`,
        ],
      },
      {
        id: 'M2 cache',
        workload: `${partitions.toLocaleString('en')} partitions of ${forestRows} new rows with no model of their own, all scored by one fallback model (a random forest, ${(forestBytes / 1024).toFixed(0)} KB of JSON): cacheModels 16 (default)`,
        dpf: median(caching.a),
        reference: median(caching.b),
        referenceName: 'the same with cacheModels: 0, loading the model per partition',
        figure: `${(median(caching.b) / median(caching.a)).toFixed(1)}× faster with the cache (${saved.toFixed(0)} µs/partition saved)`,
        target: 'report',
        met: undefined,
        notes: [],
      },
    ],
  };
}

/** Both training runs hold the same models, equal to DuckDB's own regression; returns the largest relative difference from DuckDB's. */
async function checkModels(layer: TrainingRun<SimpleLinearRegression>, plain: DPFRun, partitions: number): Promise<number> {
  const expected = await duckdb(`SELECT k::INTEGER AS k, regr_slope(y, x) AS slope, regr_intercept(y, x) AS intercept FROM (${trainingSource(partitions)}) GROUP BY k`);
  let worst = 0;
  for (const row of expected) {
    const id = String(row.k);
    const mine = await layer.getModel(id);
    const theirs = SimpleLinearRegression.load((await plain.partitionDetails(id)!.artifacts.get('model.json')) as never);
    if (mine.slope !== theirs.slope || mine.intercept !== theirs.intercept) throw new Error(`M2: partition ${id} has another model in the layer's run than in the plain run`);
    worst = Math.max(worst, relative(mine.slope, Number(row.slope)), relative(mine.intercept, Number(row.intercept)));
  }
  return worst;
}

/** Both inference runs saved the same predictions. */
async function checkPredictions(layer: DPFRun, plain: DPFRun, partitions: number): Promise<void> {
  const sql = 'SELECT partition_id, x, predicted, model_run_id FROM p ORDER BY partition_id, x';
  const [mine, theirs] = await Promise.all([layer.query(sql, { p: 'predictions.parquet' }), plain.query(sql, { p: 'predictions.parquet' })]);
  if (mine.numRows !== partitions * ROWS_PER_PARTITION) throw new Error(`M2: ManyModelInference saved ${mine.numRows} predictions, not ${partitions * ROWS_PER_PARTITION}`);
  if (JSON.stringify(mine.toArray()) !== JSON.stringify(theirs.toArray())) throw new Error('M2: ManyModelInference and the plain run saved other predictions');
}

function relative(mine: number, theirs: number): number {
  return Math.abs(mine - theirs) / Math.max(Math.abs(theirs), 1e-300);
}
