import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { LeaseLostError, StageError } from '../errors.js';
import type { LeaseContent } from '../model/lease.js';
import { FORMATS, parseStored } from '../model/stored-json.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';

/** How often the owner renews its lease. */
export const RENEW_INTERVAL_MS = 2_000;
/**
 * A lease not renewed for this long belongs to a driver that is gone (7 missed renewals: a busy
 * or briefly paused driver is not judged dead). On the owner's host a driver whose process is gone
 * is judged at once. Hosts judge each other's leases by their clocks: keep them synchronised (NTP).
 */
export const LEASE_STALE_MS = 15_000;
/**
 * The owner stops writing once its last renewal is this old: by then others may be about to
 * judge it gone, and it must not commit after they took over.
 */
const SELF_FENCE_MS = LEASE_STALE_MS - 3 * RENEW_INTERVAL_MS;

/** Who holds a run's lease, as another process sees it. */
export interface LeaseHolder {
  epoch: number;
  pid: number;
  host: string;
  startedAt: number;
  renewedAt: number;
  /** Whether the holder counts as alive now (see {@link LEASE_STALE_MS}). */
  alive: boolean;
  /** A released lease: the run's driver ended, maybe on an error said here. */
  released: boolean;
  note: string | undefined;
}

/** What the lease of a run says now, or undefined when the run has none. */
export async function readLease(stage: Stage, layout: RunLayout): Promise<{ content: LeaseContent; version: string } | undefined> {
  const object = await stage.get(layout.lease);
  if (object === undefined) return undefined;
  const content = parseStored<LeaseContent>(object.bytes.toString('utf8'), stage.describe(layout.lease), 'lease', "delete it to let a resume take the run");
  return { content, version: object.version };
}

export function describeHolder(content: LeaseContent, now = Date.now()): LeaseHolder {
  const released = content.state === 'released';
  return {
    epoch: content.epoch,
    pid: content.pid,
    host: content.host,
    startedAt: content.startedAt,
    renewedAt: content.renewedAt,
    released,
    note: content.note,
    alive: !released && isAlive(content, now),
  };
}

/**
 * The leases drivers of this process hold now: a lease of this process that is not among them
 * belongs to a driver that stopped (on a full disk it could not even write its release), and is
 * taken at once. (A driver in another worker thread of the process is not seen here; it would
 * find its lease taken at its next renewal and stop, so this stays safe.)
 */
const heldHere = new Set<string>();

/** This process's pid namespace: containers on one host share a host name but not their pids. */
const PID_NAMESPACE = (() => {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
})();

function isAlive(content: LeaseContent, now: number): boolean {
  if (now - content.renewedAt > LEASE_STALE_MS) return false;
  if (content.host !== hostname() || content.pidns !== PID_NAMESPACE) return true;
  if (content.pid === process.pid) return heldHere.has(content.owner);
  try {
    process.kill(content.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A driver's ownership of a run. Taken by one conditional write of `_dpf/lease.json`
 * (create-if-absent for a new run, replace-if-unchanged of a released or dead holder's lease),
 * which raises the epoch; renewed with replace-if-unchanged, so the owner finds out at its next
 * renewal that another driver took the run, and stops.
 */
export class RunLease {
  private timer: NodeJS.Timeout | undefined;
  private lost: Error | undefined;
  private renewing: Promise<void> = Promise.resolve();
  private onLost: ((error: Error) => void) | undefined;

  private constructor(
    private readonly stage: Stage,
    private readonly layout: RunLayout,
    private content: LeaseContent,
    private version: string,
    private renewedAt: number,
  ) {}

  /** The fencing token: raised by every take of the run. */
  get epoch(): number {
    return this.content.epoch;
  }

  /** The owner's random token: its journal segments' writer, its attempt tokens' prefix. */
  get owner(): string {
    return this.content.owner;
  }

  /**
   * Takes the run's lease: creates it (a run without one), or replaces a released or dead
   * holder's. Returns the live holder instead when there is one. `minEpoch` keeps epochs rising
   * across an overwrite, which deletes the old lease.
   */
  static async take(stage: Stage, layout: RunLayout, minEpoch = 1): Promise<RunLease | LeaseHolder> {
    for (;;) {
      const current = await readLease(stage, layout).catch((error: unknown) => {
        // A damaged lease holds no one: it is replaced like a dead holder's.
        if (error instanceof StageError) throw error;
        return 'damaged' as const;
      });
      const now = Date.now();
      if (current !== undefined && current !== 'damaged') {
        const holder = describeHolder(current.content, now);
        if (holder.alive) return holder;
      }
      const content: LeaseContent = {
        dpf: 'lease',
        format: FORMATS.lease,
        epoch: Math.max(minEpoch, current === undefined || current === 'damaged' ? 1 : current.content.epoch + 1),
        owner: randomBytes(6).toString('hex'),
        pid: process.pid,
        host: hostname(),
        ...(PID_NAMESPACE !== undefined ? { pidns: PID_NAMESPACE } : {}),
        startedAt: now,
        renewedAt: now,
        state: 'held',
      };
      const body = JSON.stringify(content);
      // Counted as held before the write lands: another taker in this process that reads the new
      // lease at once must see it alive.
      heldHere.add(content.owner);
      let version: string | undefined;
      try {
        if (current === undefined) version = await stage.create(layout.lease, body);
        else if (current === 'damaged') version = await stage.put(layout.lease, body);
        else version = await stage.replace(layout.lease, body, current.version);
      } finally {
        if (version === undefined) heldHere.delete(content.owner);
      }
      // Lost the race to another taker: look again.
      if (version !== undefined) {
        const lease = new RunLease(stage, layout, content, version, now);
        // Renewed from the moment it is taken: a slow resume must not look dead meanwhile.
        lease.startRenewing();
        return lease;
      }
    }
  }

  /**
   * Raises this lease's epoch to at least `epoch` (a lease deleted by hand was made again at 1,
   * below the epochs the journal has seen). Throws LeaseLostError if the lease changed hands.
   */
  async raiseEpoch(epoch: number): Promise<void> {
    if (this.content.epoch >= epoch) return;
    const content: LeaseContent = { ...this.content, epoch, renewedAt: Date.now() };
    const version = await this.stage.replace(this.layout.lease, JSON.stringify(content), this.version);
    if (version === undefined) throw new LeaseLostError(`Another driver took run "${this.layout.runId}" at the same moment; wait for it, or cancel it`);
    this.content = content;
    this.version = version;
    this.renewedAt = content.renewedAt;
  }

  /** `onLost` hears when the lease is lost (at once, if it already is). */
  whenLost(onLost: (error: Error) => void): void {
    this.onLost = onLost;
    if (this.lost !== undefined) onLost(this.lost);
  }

  /** Renews the lease every few seconds until {@link RunLease.release}. */
  private startRenewing(): void {
    this.timer = setInterval(() => {
      this.renewing = this.renewing.then(() => this.renew());
    }, RENEW_INTERVAL_MS);
    this.timer.unref();
  }

  /**
   * Resolves once the lease is certainly still ours: not lost, and renewed recently enough that no
   * other process can have judged this driver gone. Called before every commit of the journal.
   *
   * A last renewal older than that (the process was paused, its wall clock stepped forward, the
   * stage was slow) is not yet a loss: the lease is renewed at once with the same
   * replace-if-unchanged. If that lands, no other driver took the run meanwhile — a taker replaces
   * the same version, so only one of the two writes can land — and this driver goes on; if another
   * driver took it, or the stage cannot be written, the lease is lost.
   */
  async assertHeld(): Promise<void> {
    if (this.lost !== undefined) throw this.lost;
    if (this.timer === undefined || Date.now() - this.renewedAt <= SELF_FENCE_MS) return;
    const overdue = Date.now() - this.renewedAt;
    this.renewing = this.renewing.then(() => this.renew());
    await this.renewing;
    if (this.lost !== undefined) throw this.lost;
    if (Date.now() - this.renewedAt > SELF_FENCE_MS) {
      this.loseWith(new LeaseLostError(
        `The driver of run "${this.layout.runId}" could not renew its lease for ${Math.round(overdue / 1000)} s (was the stage unreachable?); ` +
          'it stopped so that a resume can take the run over safely',
      ));
      throw this.lost!;
    }
  }

  /** Ends the ownership: the lease says the run's driver is gone, so a resume needs no wait. */
  async release(note?: string): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.renewing;
    heldHere.delete(this.content.owner);
    if (this.lost !== undefined) return;
    const content: LeaseContent = { ...this.content, renewedAt: Date.now(), state: 'released', ...(note !== undefined ? { note } : {}) };
    await this.stage.replace(this.layout.lease, JSON.stringify(content), this.version).catch(() => undefined);
  }

  private async renew(): Promise<void> {
    if (this.lost !== undefined || this.timer === undefined) return;
    const content: LeaseContent = { ...this.content, renewedAt: Date.now() };
    let version: string | undefined;
    try {
      version = await this.stage.replace(this.layout.lease, JSON.stringify(content), this.version);
    } catch {
      // The stage may be briefly unreachable; assertHeld stops the driver if it stays so.
      return;
    }
    if (version === undefined) {
      const now = await readLease(this.stage, this.layout).catch(() => undefined);
      const by = now === undefined ? 'the lease was deleted' : `pid ${now.content.pid} on ${now.content.host} took it (epoch ${now.content.epoch})`;
      this.loseWith(new LeaseLostError(`The driver of run "${this.layout.runId}" lost the run: ${by}; it stopped and committed nothing more`));
      return;
    }
    this.content = content;
    this.version = version;
    this.renewedAt = content.renewedAt;
  }

  private loseWith(error: Error): void {
    if (this.lost !== undefined) return;
    this.lost = error;
    heldHere.delete(this.content.owner);
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.onLost?.(error);
  }
}
