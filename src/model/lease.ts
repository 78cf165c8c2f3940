import type { StoredHeader } from './stored-json.js';

/**
 * `_dpf/lease.json`: which driver owns the run. Taking the run — new, resumed, or abandoned — is
 * one conditional write of this object (create-if-absent, or replace-if-unchanged of the version
 * read), and each take raises `epoch`: the fencing token every journal segment of the owner
 * carries. The owner renews `renewedAt` every few seconds with replace-if-unchanged, so it learns
 * at once when another driver took the run.
 */
export interface LeaseContent extends StoredHeader<'lease'> {
  epoch: number;
  /** The owner's random token: the writer of its journal segments, the prefix of its attempt tokens. */
  owner: string;
  pid: number;
  host: string;
  /** The owner's pid namespace (Linux), so a pid is judged only where it means the same process. */
  pidns?: string;
  startedAt: number;
  renewedAt: number;
  /** `released` once the owner ended (or stopped on an error, said in `note`). */
  state: 'held' | 'released';
  note?: string;
}

/** The note of the lease of a run submitted to a queue, before a worker takes it (run/queue-submit.ts). */
export const SUBMITTED_NOTE = 'submitted to the queue: a dpf worker drives it';

/** The note of a lease its driver handed over: its worker is leaving, and another takes the run on (run/run-driver.ts handOver). */
export const DRIVER_HANDED_OVER = 'handed over: the dpf worker driving the run is leaving, and another takes the run on';
