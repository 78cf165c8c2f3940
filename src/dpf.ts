import { type ExecutionOptions, resolveExecutionOptions } from './execution-options.js';
import { InvalidOptionError } from './errors.js';
import {
  loadPartitionFunction,
  type ModuleReference,
  type PartitionFunction,
  type PartitionModule,
  resolveModuleReference,
} from './execute/partition-module.js';
import { planStagePartitions } from './plan/stage-partitions.js';
import type { DPFRun } from './run/dpf-run.js';
import type { RunSpec } from './run/run-spec.js';
import { type OnExistingArtifacts, startRun } from './run/start-run.js';
import { openStage, stageFolder } from './stage/open-stage.js';
import { checkOneOf, checkOptionsObject, checkString } from './validate.js';

/** Options of {@link DPF}. */
export interface DPFOptions {
  /**
   * Where runs keep their artifacts, logs and state: a local folder (created if missing), or a
   * folder on a file system every worker machine mounts.
   */
  stage: string | URL;
}

/** Options of {@link DPF.runFromStage}. */
export interface StageRunOptions {
  /** The folder holding the files to process; each matching file is one partition. */
  stageLocation: string | URL;
  /**
   * Names the run; its results go to `{stage}/{runId}/`. Letters, digits, `.`, `_` and `-`,
   * starting with a letter or digit.
   */
  runId: string;
  /**
   * Glob of the files to process, relative to `stageLocation`. `*.csv` matches the folder's own
   * files; `**\/*.csv` includes sub-folders.
   * @defaultValue `'*.parquet'`
   */
  filePattern?: string;
  /**
   * Run exactly these files (paths relative to `stageLocation`, as partition ids), ignoring
   * `filePattern` — to rerun the partitions that failed.
   */
  partitionIds?: readonly string[];
  /**
   * What to do when the stage already holds a run with this runId: `'error'` refuses,
   * `'overwrite'` replaces it, `'resume'` keeps its DONE partitions and runs the rest.
   * @defaultValue `'error'`
   */
  onExistingArtifacts?: OnExistingArtifacts;
  /** How partitions are executed. */
  executionOptions?: ExecutionOptions;
}

const STAGE_RUN_KEYS = ['stageLocation', 'runId', 'filePattern', 'partitionIds', 'onExistingArtifacts', 'executionOptions'] as const;
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * A Distributed Partition Function: one function, run over every partition of a dataset in
 * parallel, keeping what each partition produces on the stage.
 *
 * @example
 * ```ts
 * const dpf = new DPF(new URL('./convert.ts', import.meta.url), { stage: './stage' });
 * const run = await dpf.runFromStage({ stageLocation: './input', filePattern: '**\/*.csv', runId: 'convert' });
 * console.log(await run.wait());   // 'SUCCESS'
 * ```
 */
export class DPF {
  private readonly module: ModuleReference;
  private readonly stageLocation: string;
  private loaded: Promise<PartitionFunction> | undefined;

  /**
   * @param module The module exporting the partition function: a path or `file:` URL of a `.ts`,
   *   `.js` or `.mjs` file (its default export), or `{ module, exportName }` for a named export.
   * @param options Where the runs live.
   */
  constructor(module: PartitionModule, options: DPFOptions) {
    this.module = resolveModuleReference(module);
    const checked = checkOptionsObject(options, 'options', ['stage']);
    this.stageLocation = stageFolder(checked.stage);
  }

  /**
   * Stage mode: runs the function once per file under `stageLocation` matching `filePattern`.
   * Everything is checked before any work starts; the returned run is already executing.
   *
   * @example
   * ```ts
   * const run = await dpf.runFromStage({ stageLocation: './input', runId: 'files', filePattern: '*.parquet' });
   * const failed = (await run.getProgress()).FAILED.map((details) => details.partitionId);
   * await dpf.runFromStage({ stageLocation: './input', runId: 'files', partitionIds: failed, onExistingArtifacts: 'resume' });
   * ```
   */
  async runFromStage(options: StageRunOptions): Promise<DPFRun> {
    const checked = checkOptionsObject(options, 'runFromStage options', STAGE_RUN_KEYS);
    const runId = checkRunId(checked.runId);
    const filePattern = checked.filePattern === undefined ? '*.parquet' : checkString(checked.filePattern, 'filePattern');
    const onExistingArtifacts =
      checked.onExistingArtifacts === undefined ? 'error' : checkOneOf(checked.onExistingArtifacts, 'onExistingArtifacts', ['error', 'overwrite', 'resume'] as const);
    if (checked.partitionIds !== undefined && !Array.isArray(checked.partitionIds)) {
      throw new InvalidOptionError('partitionIds', 'expected an array of file paths relative to stageLocation');
    }
    const executionOptions = resolveExecutionOptions(checked.executionOptions);
    await this.checkFunction();
    const stage = (await openStage(this.stageLocation, { create: true }))!;
    const encoding = { caseInsensitive: stage.caseInsensitive };
    const { location, partitions } = await planStagePartitions({
      stageLocation: checked.stageLocation as string | URL,
      filePattern,
      partitionIds: checked.partitionIds as readonly string[] | undefined,
      stageFolder: this.stageLocation,
      encoding,
    });
    const spec: RunSpec = {
      format: 1,
      runId,
      mode: 'stage',
      input: { location, filePattern },
      module: this.module,
      executionOptions,
      folderEncoding: { ...encoding, keepSlashes: true },
      createdAt: new Date().toISOString(),
    };
    return startRun({ stage, spec, partitions, onExistingArtifacts });
  }

  /** Imports the module once in this process, so a missing export fails here and not in every worker. */
  private checkFunction(): Promise<PartitionFunction> {
    this.loaded ??= loadPartitionFunction(this.module);
    this.loaded.catch(() => (this.loaded = undefined));
    return this.loaded;
  }
}

function checkRunId(value: unknown): string {
  const runId = checkString(value, 'runId');
  if (!RUN_ID.test(runId)) {
    throw new InvalidOptionError(
      'runId',
      `"${runId}" cannot name a run folder: use letters, digits, ".", "_" and "-", starting with a letter or digit (at most 128 characters)`,
    );
  }
  return runId;
}
