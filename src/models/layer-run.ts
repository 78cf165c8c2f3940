import { InvalidOptionError } from '../errors.js';
import { DPFRun, type WaitOptions } from '../run/dpf-run.js';
import type { RunStatus } from '../status.js';

/** What a many-model run (training or inference) is on top of its {@link DPFRun}. */
export abstract class LayerRun {
  constructor(
    /** The run itself: progress, partition details, logs, `query` over its artifacts. */
    readonly run: DPFRun,
  ) {}

  get runId(): string {
    return this.run.runId;
  }

  get status(): RunStatus {
    return this.run.status;
  }

  /** Waits for the run to end (see {@link DPFRun.wait}). */
  wait(options?: WaitOptions): Promise<RunStatus> {
    return this.run.wait(options);
  }
}

/**
 * The run `runId` of the stage, refused (naming `option`) unless it ran the layer `layer` —
 * `what` names the layer's class for the message.
 */
export async function restoreLayerRun(runId: string, stage: string | URL, layer: string, what: string, option = 'runId'): Promise<DPFRun> {
  const run = await DPFRun.restoreFrom(runId, stage);
  const ran = run.called?.layer;
  if (ran?.module !== layer) {
    throw new InvalidOptionError(option, `run "${runId}" is not a ${what} run (it ran ${ran === undefined ? 'a plain DPF function' : ran.module}); ${option === 'runId' ? 'restore it with DPFRun.restoreFrom' : `give the id of a ${what} run`}`);
  }
  return run;
}
