import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';

/** How often a live driver refreshes its lock. */
export const HEARTBEAT_INTERVAL_MS = 2_000;
/** A lock not refreshed for this long belongs to a driver that is gone. */
export const HEARTBEAT_STALE_MS = 15_000;

/** The content of `_dpf/lock`: which driver runs the run, and when it last said so. */
export interface LockHolder {
  token: string;
  pid: number;
  host: string;
  startedAt: number;
  heartbeatAt: number;
}

/** Whether the driver holding a lock is still alive: its process exists (same host) and its heartbeat is fresh. */
export function isHolderAlive(holder: LockHolder, now = Date.now()): boolean {
  if (now - holder.heartbeatAt > HEARTBEAT_STALE_MS) return false;
  if (holder.host !== hostname()) return true;
  if (holder.pid === process.pid) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readLockHolder(stage: Stage, layout: RunLayout): Promise<LockHolder | undefined> {
  const bytes = await stage.read(layout.lock);
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8')) as LockHolder;
  } catch {
    return undefined; // a lock being replaced; treat as absent
  }
}

/**
 * A driver's claim on a run: at most one live driver executes a run at a time. The lock is a
 * file with the holder's identity and a heartbeat the driver refreshes; a lock whose holder died
 * (its process is gone, or its heartbeat stale) may be taken over.
 */
export class RunLock {
  private timer: NodeJS.Timeout | undefined;
  private readonly holder: LockHolder;

  private constructor(
    private readonly stage: Stage,
    private readonly path: string,
  ) {
    const now = Date.now();
    this.holder = { token: randomUUID(), pid: process.pid, host: hostname(), startedAt: now, heartbeatAt: now };
  }

  /** The lock content for a new run's folder, written before the folder is published. */
  static forNewRun(stage: Stage, layout: RunLayout): RunLock {
    return new RunLock(stage, layout.lock);
  }

  get content(): string {
    return JSON.stringify(this.holder);
  }

  /**
   * Takes the lock of an existing run, or returns the live holder that has it. A dead holder's
   * lock is replaced; the content is read back to make sure no other driver won the same race.
   */
  static async take(stage: Stage, layout: RunLayout): Promise<RunLock | LockHolder> {
    const lock = new RunLock(stage, layout.lock);
    if (!(await stage.create(layout.lock, lock.content))) {
      const holder = await readLockHolder(stage, layout);
      if (holder !== undefined && isHolderAlive(holder)) return holder;
      await stage.write(layout.lock, lock.content);
    }
    const confirmed = await readLockHolder(stage, layout);
    if (confirmed?.token !== lock.holder.token) return confirmed ?? lock.holder;
    return lock;
  }

  /** Keeps the heartbeat fresh until {@link RunLock.release}. */
  startHeartbeat(): void {
    this.timer = setInterval(() => {
      this.holder.heartbeatAt = Date.now();
      void this.stage.write(this.path, this.content).catch(() => undefined);
    }, HEARTBEAT_INTERVAL_MS);
    this.timer.unref();
  }

  async release(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    const current = await this.stage.read(this.path).catch(() => undefined);
    if (current !== undefined && current.toString('utf8').includes(this.holder.token)) await this.stage.remove(this.path);
  }
}
