import type { Stage } from '../stage/stage.js';
import type { LogCapture } from './log-capture.js';

/** How long an attempt runs before its log is first written for watchers, and about how often after that. */
const LIVE_LOG_INTERVAL_MS = 1000;
/** How much of a running attempt's log watchers see: its last lines, up to this many bytes. */
const LIVE_LOG_TAIL_BYTES = 256 * 1024;

/**
 * The tail of a running attempt's log, rewritten on the stage about once a second while it has
 * new lines (`_dpf/live/{token}.log`, see RunLayout.liveLog), so the dashboard and `dpf logs` show
 * an attempt's log while it runs. An attempt of under a second writes nothing, and no attempt
 * makes a timer: one timer per worker looks at the attempt running there (a worker runs one at a
 * time), so tiny partitions pay an object, not a write. The log kept with the partition is still
 * the one stored when the attempt ends; this copy is advisory — a failed write is not retried (the
 * next second writes again) and never fails the attempt — and the driver deletes the folder when
 * the run ends.
 */
export class LiveLog {
  private readonly startedAt = Date.now();
  private written = 0;
  private writing: Promise<void> | undefined;

  constructor(
    private readonly stage: Stage,
    private readonly path: string,
    private readonly capture: LogCapture,
  ) {
    worker.running = this;
    worker.ticker ??= setInterval(() => worker.running?.tick(), LIVE_LOG_INTERVAL_MS).unref();
  }

  /** Stops writing; resolves once a write under way has ended, so nothing is written after the attempt. */
  async stop(): Promise<void> {
    if (worker.running === this) worker.running = undefined;
    await this.writing;
  }

  private tick(): void {
    const lines = this.capture.linesKept;
    if (this.writing !== undefined || lines === this.written || Date.now() - this.startedAt < LIVE_LOG_INTERVAL_MS) return;
    this.writing = this.stage
      .put(this.path, Buffer.from(this.capture.tail(LIVE_LOG_TAIL_BYTES)))
      .then(
        () => void (this.written = lines),
        () => undefined,
      )
      .finally(() => (this.writing = undefined));
  }
}

/** The attempt running in this worker, and the one timer that looks at it. */
const worker: { running: LiveLog | undefined; ticker: NodeJS.Timeout | undefined } = { running: undefined, ticker: undefined };
