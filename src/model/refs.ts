/**
 * Where bytes a run keeps are: the artifacts and logs of its attempts. Every reader finds them
 * through these references (held by the journal's records), never by listing folders: an object
 * no record refers to is not part of the run.
 */

/** Bytes on the stage: a whole object, or — with `offset` — a range of a pack object. */
export interface StoredRef {
  /** The object's path on the stage. */
  key: string;
  /** Where the bytes start inside a pack; absent for an object of its own. */
  offset?: number;
  length: number;
  /** CRC-32 of the bytes (packed ones), checked by readers: damage is an error, never a wrong answer. */
  crc?: number;
}

/** An artifact a partition uploaded, under the name it gave. */
export interface ArtifactRef extends StoredRef {
  name: string;
}

/** What one attempt logged (its lines of the partition's log). */
export interface LogRef extends StoredRef {
  attempt: number;
}

/**
 * What an attempt that wrote through `withSession` commits to the session database together with
 * its rows (the ledger row of its transaction): enough to record the partition DONE later if the
 * driver died between the database's commit and the journal's.
 */
export interface CommittedAttempt {
  attempt: number;
  /** The attempt's token (see TaskDescriptor.token). */
  token: string;
  artifacts: ArtifactRef[];
  logs: LogRef[];
  numRows?: number;
  startedAt: number;
  finishedAt: number;
}
