import { fileURLToPath } from 'node:url';
import { DPF, type DataFrameRunOptions, type DPFOptions, type StageRunOptions } from '../dpf.js';
import { ModelNotFoundError } from '../errors.js';
import { loadModuleExports, moduleExports, type PartitionModule, resolveModuleReference } from '../execute/partition-module.js';
import type { ModuleReference } from '../model/run-spec.js';
import type { DPFRun } from '../run/dpf-run.js';
import { LayerRun, restoreLayerRun } from './layer-run.js';
import type { SinglePartitionDetails } from '../run/partition-details.js';
import { checkOptionsObject } from '../validate.js';
import { builtinOf, checkSerde, type ModelSerde, referenceJson, resolveSerde, serdeReference } from './model-serde.js';
import { TRAINING_LAYER, type TrainingLayerOptions } from './training-layer.js';

/** Options of {@link ManyModelTraining}: a {@link DPF}'s, and how models are saved. */
export interface ManyModelTrainingOptions<M> extends DPFOptions {
  /**
   * Saves each partition's model and loads it back. A custom serde, or a built-in with a
   * `loader`, must also be exported by the training module, where workers find it (see
   * {@link ModelSerde}).
   * @defaultValue the training module's export named `serde`, else `jsonSerde()` (`model.json`)
   */
  serde?: ModelSerde<M>;
}

/**
 * One model per partition (Snowflake's `ManyModelTraining`): the training function — a partition
 * function that returns the trained model — runs over every partition like any DPF function, and
 * dpf saves what it returns as the partition's model artifact through the serde, within the
 * attempt (a failed attempt keeps no model; a partition whose function returns nothing is FAILED,
 * saying so). `context.args` carries the training parameters.
 *
 * @example
 * ```ts
 * // train.ts
 * export const serde = jsonSerde({ loader: SimpleLinearRegression });
 * export default async function train(data: DataConnector, context: PartitionContext<{ target: string }>) {
 *   const { x, y } = await data.toColumns();
 *   return new SimpleLinearRegression(Array.from(x), Array.from(y));
 * }
 * // main.ts
 * const training = new ManyModelTraining('./train.ts', { stage: './stage' });
 * const run = await training.run({ partitionBy: 'symbol', source: "SELECT * FROM 'stocks.csv'", runId: 'train-v1' });
 * await run.wait();
 * const model = await run.getModel('AAPL');
 * ```
 */
export class ManyModelTraining<M = unknown> {
  private readonly module: ModuleReference;
  private readonly dpfOptions: DPFOptions;
  private readonly given: ModelSerde<M> | undefined;
  private prepared: Promise<{ dpf: DPF; serde: ModelSerde<M> }> | undefined;

  /**
   * @param module The module whose export (default, or `{ module, exportName }`) is the training
   *   function `(data, context) => model`.
   */
  constructor(module: PartitionModule, options: ManyModelTrainingOptions<M>) {
    this.module = resolveModuleReference(module);
    const { serde, ...dpfOptions } = checkOptionsObject(options, 'options', ['stage', 'sessionDatabase', 'queue', 'serde']) as unknown as ManyModelTrainingOptions<M>;
    this.given = serde === undefined ? undefined : (checkSerde(serde, 'serde') as ModelSerde<M>);
    this.dpfOptions = dpfOptions;
    // Checks the stage and the other options now, as new DPF() does.
    new DPF(module, dpfOptions);
  }

  /** Trains one model per distinct value of `partitionBy` (DataFrame mode; options as {@link DPF.run}). */
  async run(options: DataFrameRunOptions): Promise<TrainingRun<M>> {
    const { dpf, serde } = await this.prepare();
    return new TrainingRun(await dpf.run(options), serde);
  }

  /** Trains one model per file (stage mode; options as {@link DPF.runFromStage}). */
  async runFromStage(options: StageRunOptions): Promise<TrainingRun<M>> {
    const { dpf, serde } = await this.prepare();
    return new TrainingRun(await dpf.runFromStage(options), serde);
  }

  /** Finds how workers get the serde (importing the module once), and the DPF that runs the layer. */
  private prepare(): Promise<{ dpf: DPF; serde: ModelSerde<M> }> {
    this.prepared ??= (async () => {
      const exports = moduleExports(await loadModuleExports(this.module));
      const { serde, reference } = serdeReference(this.given, exports, fileURLToPath(this.module.url));
      const options: TrainingLayerOptions = { serde: reference };
      const dpf = DPF.layered({ module: this.module.url, exportName: this.module.exportName }, this.dpfOptions, { module: TRAINING_LAYER, options: { serde: referenceJson(options.serde) } });
      return { dpf, serde: serde as ModelSerde<M> };
    })();
    this.prepared.catch(() => (this.prepared = undefined));
    return this.prepared;
  }
}

/** A model of a training run, with the partition it was trained on. */
export interface PartitionModel<M> {
  partitionId: string;
  /** The training run the model comes from. */
  runId: string;
  model: M;
}

/**
 * A {@link ManyModelTraining} run: the {@link DPFRun} (`run`) and its models. Restore one from
 * any process with {@link TrainingRun.restoreFrom}.
 */
export class TrainingRun<M = unknown> extends LayerRun {
  constructor(
    run: DPFRun,
    /** The serde the models are loaded with. */
    readonly serde: ModelSerde<M>,
  ) {
    super(run);
  }

  /**
   * The model trained on a partition, loaded through the serde (a live model when the serde has
   * a loader). A `ModelNotFoundError` when the run has no such partition or it is not DONE.
   */
  async getModel(partitionId: string): Promise<M> {
    const details = await this.run.currentDetails(partitionId);
    if (details === undefined) {
      throw new ModelNotFoundError(`training run "${this.runId}" has no partition "${partitionId}"; its partitions are those of its partitionBy values (run.getPartitionDetails() lists them)`);
    }
    return this.load(details);
  }

  /** Every model of the run's DONE partitions, in the run's partition order (each loaded as it is reached). */
  async *models(): AsyncGenerator<PartitionModel<M>> {
    for (const details of (await this.run.getProgress()).DONE) yield { partitionId: details.partitionId, runId: this.runId, model: await this.load(details) };
  }

  private async load(details: SinglePartitionDetails): Promise<M> {
    if (details.status !== 'DONE') {
      throw new ModelNotFoundError(
        `partition "${details.partitionId}" of training run "${this.runId}" is ${details.status}, so it has no model${details.error === undefined ? '' : ` (${details.error.name}: ${details.error.message})`}; rerun it (partitionIds with onExistingArtifacts: 'resume')`,
      );
    }
    const builtin = builtinOf(this.serde);
    if (builtin !== undefined) return builtin.fromArtifact(await details.artifacts.get(this.serde.filename));
    return details.artifacts.get(this.serde.filename, (path) => this.serde.load(path));
  }

  /**
   * A training run stored on a stage, from any process. The serde is the one the run was trained
   * with — a built-in by its description (give `serde` for one with a loader, to get live models),
   * a module's export from that module — unless `serde` is given.
   *
   * @example
   * ```ts
   * const training = await TrainingRun.restoreFrom('train-v1', './stage', { serde });
   * for await (const { partitionId, model } of training.models()) console.log(partitionId, model.predict(10));
   * ```
   */
  static async restoreFrom<M = unknown>(runId: string, stage: string | URL, options: { serde?: ModelSerde<M> } = {}): Promise<TrainingRun<M>> {
    const run = await restoreLayerRun(runId, stage, TRAINING_LAYER, 'ManyModelTraining');
    const called = run.called!;
    if (options.serde !== undefined) return new TrainingRun(run, checkSerde(options.serde, 'serde') as ModelSerde<M>);
    const { serde: reference } = called.layer!.options as unknown as TrainingLayerOptions;
    const exports = reference.kind === 'export' ? moduleExports(await loadModuleExports(called)) : undefined;
    return new TrainingRun(run, resolveSerde(reference, exports, fileURLToPath(called.url)) as ModelSerde<M>);
  }
}
