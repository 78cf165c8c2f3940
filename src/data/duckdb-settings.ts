/** Limits for the embedded DuckDB of a worker, so several workers do not oversubscribe the machine. */
export interface DuckDBSettings {
  /** Threads DuckDB may use. */
  threads?: number;
  /** Memory DuckDB may use, in MiB. */
  memoryLimitMb?: number;
}

let settings: DuckDBSettings = {};

/** Sets the limits of this worker's DuckDB; takes effect if DuckDB was not started yet. */
export function configureDuckDB(next: DuckDBSettings): void {
  settings = next;
}

export function duckdbSettings(): DuckDBSettings {
  return settings;
}
