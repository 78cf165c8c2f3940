import type { SerializedError } from '../errors.js';
import type { RunLayout } from '../stage/run-layout.js';
import { joinStagePath, type Stage } from '../stage/stage.js';
import { readStoredRef } from '../stage/stored-ref.js';
import { PartitionStatus } from '../status.js';
import { ArtifactsManager } from './artifacts-manager.js';
import { type PartitionState, tokenOf } from './run-state.js';

/** Everything known about one partition of a run (Snowflake DPF's `SinglePartitionDetails`). */
export interface SinglePartitionDetails {
  readonly partitionId: string;
  /**
   * The partition's folder relative to the stage's root, `{runId}/{folder}` — the id encoded
   * into a name every stage accepts (`train/A%7CB` for the key `A|B`). Pass it as `stagePath` to
   * `downloadFromStage`, or join it to the stage's location for tools outside dpf; the files
   * that are the partition's artifacts are the ones `artifacts` lists (an artifact may be packed
   * with others, or kept in a sub-folder, so list it rather than the folder).
   */
  readonly stagePath: string;
  readonly status: PartitionStatus;
  /** Attempts made so far (across resumed runs too). */
  readonly attempts: number;
  /** The last failure: the function's error, a timeout, or the worker's death. */
  readonly error: SerializedError | undefined;
  readonly startedAt: Date | undefined;
  readonly finishedAt: Date | undefined;
  readonly durationMs: number | undefined;
  /** Rows the function read, when it read the partition as a table. */
  readonly numRows: number | undefined;
  /**
   * The partition's log — every attempt's lines, with timestamps, in order — read from the stage;
   * empty when it logged nothing. While the partition runs, its running attempt's lines so far
   * follow (the last 256 KiB of them, as its worker last wrote them: once a second). Rejects with StageDamagedError naming the file if part of it is gone.
   */
  logs(): Promise<string>;
  /** The partition's artifacts. */
  readonly artifacts: ArtifactsManager;
}

/** A snapshot of one partition's state, with its log and artifacts on the stage. */
export class PartitionDetails implements SinglePartitionDetails {
  readonly stagePath: string;
  readonly status: PartitionStatus;
  readonly attempts: number;
  readonly error: SerializedError | undefined;
  readonly startedAt: Date | undefined;
  readonly finishedAt: Date | undefined;
  readonly durationMs: number | undefined;
  readonly numRows: number | undefined;
  readonly artifacts: ArtifactsManager;
  private readonly layout: RunLayout;
  private readonly logRefs: PartitionState['logs'];
  /** A RUNNING partition: the token of its attempt (where its live log is). */
  private readonly runningToken: string | undefined;

  constructor(
    readonly partitionId: string,
    /** The partition's folder inside the run (the partition list's). */
    folder: string,
    state: PartitionState,
    private readonly stage: Stage,
    layout: RunLayout,
    /** The status to report, when it is not the journal's (a partition left RUNNING by a driver that is gone). */
    status: PartitionStatus = state.status,
  ) {
    this.stagePath = joinStagePath(layout.runId, folder);
    this.status = status;
    this.attempts = state.attempts;
    this.error = state.error;
    this.startedAt = state.startedAt === undefined ? undefined : new Date(state.startedAt);
    this.finishedAt = state.finishedAt === undefined ? undefined : new Date(state.finishedAt);
    this.durationMs = state.startedAt !== undefined && state.finishedAt !== undefined ? state.finishedAt - state.startedAt : undefined;
    this.numRows = state.numRows;
    this.logRefs = [...state.logs];
    this.runningToken = status === PartitionStatus.RUNNING ? tokenOf(state) : undefined;
    this.layout = layout;
    this.artifacts = new ArtifactsManager(stage, layout, partitionId, state.artifacts ?? []);
  }

  async logs(): Promise<string> {
    const parts = await Promise.all(this.logRefs.map((ref) => readStoredRef(this.stage, ref, `the log of attempt ${ref.attempt} of partition "${this.partitionId}"`)));
    const live = await this.liveLog();
    if (live !== undefined) parts.push(live);
    return Buffer.concat(parts).toString('utf8');
  }

  /**
   * What the running attempt has logged so far — its last 256 KiB, written once a second by its
   * worker (execute/live-log.ts) — or undefined when the partition is not RUNNING or its attempt
   * has written none yet.
   */
  private async liveLog(): Promise<Buffer | undefined> {
    if (this.runningToken === undefined) return undefined;
    const object = await this.stage.get(this.layout.liveLog(this.runningToken)).catch(() => undefined);
    return object?.bytes;
  }
}
