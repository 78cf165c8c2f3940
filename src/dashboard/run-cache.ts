import type { DPFRun } from '../run/dpf-run.js';
import { restoreStageRun, stageFolders, type StageRun, storedRunUid } from '../run/stage-runs.js';

/** A run read again from the stage at most this often, however many requests ask for it. */
const REFRESH_MS = 250;
/** The stage's folders listed again at most this often. */
const LIST_MS = 1000;
/** Each kept run checked this often for having been overwritten by a new run of its id. */
const UID_CHECK_MS = 5000;

interface CachedRun {
  run: DPFRun;
  readAt: number;
  reading: Promise<void> | undefined;
}

/**
 * The runs of one stage, as the dashboard reads them: each run restored once and kept, read
 * again (its journal's new segments, its lease) when asked for and not read in the last 250 ms;
 * the stage's folders listed again when asked for and not listed in the last second. Only runs
 * the stage lists are ever looked up: a run id from a request is a key here, never a path.
 */
export class RunCache {
  private readonly runs = new Map<string, CachedRun>();
  private damaged = new Map<string, string>();
  /** The stage's folders in the order it lists them, as last listed. */
  private folders: string[] = [];
  private listedAt = -Infinity;
  private listing: Promise<void> | undefined;
  private uidsCheckedAt = Date.now();
  /** The stage's location as dpf resolved it (known once listed). */
  location: string;

  constructor(private readonly stage: string) {
    this.location = stage;
  }

  /** Every run on the stage and every folder that looks like a run and cannot be read, each read within the last 250 ms. */
  async list(): Promise<StageRun[]> {
    await this.relist();
    const found: StageRun[] = [];
    for (const runId of this.folders) {
      const cached = this.runs.get(runId);
      if (cached !== undefined) found.push({ runId, run: await this.fresh(cached) });
      else if (this.damaged.has(runId)) found.push({ runId, damaged: this.damaged.get(runId)! });
    }
    return found;
  }

  /** The run of this id, read within the last 250 ms; undefined when the stage has no such run. */
  async get(runId: string): Promise<DPFRun | undefined> {
    // A run started, overwritten or deleted since the last listing (listed at most once a second).
    await this.relist();
    const cached = this.runs.get(runId);
    return cached === undefined ? undefined : this.fresh(cached);
  }

  /** The run as last read, without reading it again (undefined when not listed). */
  peek(runId: string): DPFRun | undefined {
    return this.runs.get(runId)?.run;
  }

  /** Reads the run again when it was not read in the last 250 ms (one read at a time per run). */
  async fresh(cached: CachedRun, maxAgeMs = REFRESH_MS): Promise<DPFRun> {
    if (Date.now() - cached.readAt >= maxAgeMs) {
      cached.reading ??= cached.run.observe().finally(() => {
        cached.readAt = Date.now();
        cached.reading = undefined;
      });
      await cached.reading;
    }
    return cached.run;
  }

  /** Reads the run of this id again now (unless a read is under way, which is awaited). */
  async reread(runId: string): Promise<DPFRun | undefined> {
    const cached = this.runs.get(runId);
    return cached === undefined ? undefined : this.fresh(cached, 0);
  }

  private async relist(): Promise<void> {
    if (Date.now() - this.listedAt < LIST_MS) return this.listing;
    this.listing ??= (async () => {
      try {
        const { location, folders, stage } = await stageFolders(this.stage);
        this.location = location;
        if (stage !== undefined && Date.now() - this.uidsCheckedAt >= UID_CHECK_MS) {
          // A run overwritten (onExistingArtifacts: 'overwrite') is a new run: read afresh.
          for (const [runId, cached] of this.runs) if ((await storedRunUid(stage, runId)) !== cached.run.uid) this.runs.delete(runId);
          this.uidsCheckedAt = Date.now();
        }
        const damaged = new Map<string, string>();
        for (const runId of folders) {
          if (this.runs.has(runId)) continue;
          const found = await restoreStageRun(runId, this.stage);
          if (found === undefined) continue;
          if ('run' in found) this.runs.set(runId, { run: found.run, readAt: Date.now(), reading: undefined });
          else damaged.set(runId, found.damaged);
        }
        const listed = new Set(folders);
        for (const runId of [...this.runs.keys()]) if (!listed.has(runId)) this.runs.delete(runId);
        this.damaged = damaged;
        this.folders = folders;
        this.listedAt = Date.now();
      } finally {
        this.listing = undefined;
      }
    })();
    return this.listing;
  }
}
