import { join } from 'node:path';
import { DPF, type DPFRun, ManyModelTraining, RunStatus, type TrainingRun } from 'dpf';
import { SimpleLinearRegression } from 'ml-regression-simple-linear';
import { type BenchOptions, duckdb, FUNCTIONS, freshDir, median, type Result, seconds } from '../harness.js';

const THREADS = 2;
const ROWS_PER_PARTITION = 30;

/** M2's data: `partitions` keys of 30 rows, y a line of x per key (slope and intercept from the key) plus a fixed wobble. */
function trainingSource(partitions: number): string {
  return `SELECT i % ${partitions} AS k, (i // ${partitions})::DOUBLE AS x,
                 ((i % ${partitions}) % 7 + 1) * (i // ${partitions}) + (i % ${partitions}) / 10 + sin(i)::DOUBLE AS y
          FROM range(${partitions * ROWS_PER_PARTITION}) t(i)`;
}

/** One side's times for one run, in seconds: the training run (`run()` to `wait()`), and reading every model back live. */
interface Sample {
  train: number;
  load: number;
}

/**
 * M2: many models. 2,000 partitions (30 rows each) each train a least-squares line
 * (ml-regression-simple-linear); ManyModelTraining saves the model it returns through the serde
 * (`jsonSerde` with the model's loader → model.json), and all 2,000 are then read back as live
 * models (`TrainingRun.models()`). Reference, in the same bench run and interleaved with it: a
 * plain `dpf.run` whose function does the same training and saves the same model with
 * `context.uploadToStage(model, 'model.json')`, its models read back by hand
 * (`details.artifacts.get('model.json')` and `SimpleLinearRegression.load`). The figure is the
 * layer's overhead per model, (layer − plain) / partitions, of the median paired difference.
 */
export async function m2(options: BenchOptions): Promise<Result> {
  const partitions = options.smoke ? 100 : 2_000;
  const stage = await freshDir('stage-m2');
  const module = join(FUNCTIONS, 'm2-models.mjs');
  const training = new ManyModelTraining<SimpleLinearRegression>(module, { stage });
  const plain = new DPF({ module, exportName: 'trainByHand' }, { stage });
  const runOptions = (runId: string) => ({
    partitionBy: 'k',
    source: trainingSource(partitions),
    runId,
    onExistingArtifacts: 'overwrite' as const,
    executionOptions: { availableCpus: THREADS },
  });

  const layered = async (runId: string): Promise<Sample & { run: TrainingRun<SimpleLinearRegression> }> => {
    const started = performance.now();
    const run = await training.run(runOptions(runId));
    if ((await run.wait()) !== RunStatus.SUCCESS) throw new Error(`M2 training run ${runId} failed`);
    const trained = performance.now();
    let models = 0;
    for await (const { model } of run.models()) if (Number.isFinite(model.predict(1))) models++;
    if (models !== partitions) throw new Error(`M2: ${models} live models from ManyModelTraining, not ${partitions}`);
    return { train: (trained - started) / 1000, load: (performance.now() - trained) / 1000, run };
  };
  const byHand = async (runId: string): Promise<Sample & { run: DPFRun }> => {
    const started = performance.now();
    const run = await plain.run(runOptions(runId));
    if ((await run.wait()) !== RunStatus.SUCCESS) throw new Error(`M2 plain run ${runId} failed`);
    const trained = performance.now();
    let models = 0;
    for (const details of (await run.getProgress()).DONE) if (Number.isFinite(SimpleLinearRegression.load(await details.artifacts.get('model.json')).predict(1))) models++;
    if (models !== partitions) throw new Error(`M2: ${models} live models from the plain run, not ${partitions}`);
    return { train: (trained - started) / 1000, load: (performance.now() - trained) / 1000, run };
  };

  // Interleaved, the order alternating, after one warm-up of each: the machine's drift hits both sides alike.
  const layerSamples: Sample[] = [];
  const plainSamples: Sample[] = [];
  let last: { layer: TrainingRun<SimpleLinearRegression>; plain: DPFRun } | undefined;
  for (let run = -1; run < options.runs; run++) {
    const layerFirst = run % 2 === 0;
    const a = layerFirst ? await layered(`m2-train-${run + 1}`) : undefined;
    const b = await byHand(`m2-plain-${run + 1}`);
    const c = a ?? (await layered(`m2-train-${run + 1}`));
    if (run < 0) continue;
    layerSamples.push(c);
    plainSamples.push(b);
    last = { layer: c.run, plain: b.run };
  }

  // Both sides trained the same models, equal to DuckDB's own regression.
  const expected = await duckdb(`SELECT k::INTEGER AS k, regr_slope(y, x) AS slope, regr_intercept(y, x) AS intercept FROM (${trainingSource(partitions)}) GROUP BY k`);
  let worst = 0;
  for (const row of expected) {
    const id = String(row.k);
    const mine = await last!.layer.getModel(id);
    const theirs = SimpleLinearRegression.load((await last!.plain.partitionDetails(id)!.artifacts.get('model.json')) as never);
    if (mine.slope !== theirs.slope || mine.intercept !== theirs.intercept) throw new Error(`M2: partition ${id} has another model in the layer's run than in the plain run`);
    worst = Math.max(worst, relative(mine.slope, Number(row.slope)), relative(mine.intercept, Number(row.intercept)));
  }

  const total = (sample: Sample) => sample.train + sample.load;
  const perModel = (seconds: number) => (seconds / partitions) * 1e6;
  const paired = (part: (sample: Sample) => number) => perModel(median(layerSamples.map((sample, index) => part(sample) - part(plainSamples[index]!))));
  const overhead = paired(total);
  const differences = layerSamples.map((sample, index) => perModel(total(sample) - total(plainSamples[index]!)));
  const train = paired((sample) => sample.train);
  const load = paired((sample) => sample.load);
  const layerMedian = median(layerSamples.map(total));
  const plainMedian = median(plainSamples.map(total));
  return {
    id: 'M2',
    workload: `${partitions.toLocaleString('en')} partitions of ${ROWS_PER_PARTITION} rows, each training a least-squares line: ManyModelTraining (jsonSerde, model.json), then every model loaded back live`,
    dpf: layerMedian,
    reference: plainMedian,
    referenceName: 'plain dpf.run, the same training saved by hand with uploadToStage, loaded by hand',
    figure: `${overhead.toFixed(1)} µs/model over the plain run (train ${train.toFixed(1)}, load ${load.toFixed(1)}); equal to DuckDB's regression to ${worst.toExponential(1)}`,
    target: '≤ 100 µs/model',
    met: overhead <= 100,
    notes: [
      `layer: train ${seconds(median(layerSamples.map((sample) => sample.train)))}, load ${seconds(median(layerSamples.map((sample) => sample.load)))}; ` +
        `plain: train ${seconds(median(plainSamples.map((sample) => sample.train)))}, load ${seconds(median(plainSamples.map((sample) => sample.load)))} (medians, ${THREADS} workers); ` +
        `the paired differences ranged ${Math.min(...differences).toFixed(1)} to ${Math.max(...differences).toFixed(1)} µs/model`,
    ],
  };
}

function relative(mine: number, theirs: number): number {
  return Math.abs(mine - theirs) / Math.max(Math.abs(theirs), 1e-300);
}
