/** Limits for the embedded DuckDB of a worker, so several workers do not oversubscribe the machine. */
export interface DuckDBSettings {
  /** Threads DuckDB may use. */
  threads?: number;
  /** Memory DuckDB may use, in MiB. */
  memoryLimitMb?: number;
}

let settings: DuckDBSettings = {};

/**
 * Sets the limits of this worker's DuckDB; takes effect if DuckDB was not started yet.
 *
 * DuckDB's memory limit in a worker is `executionOptions.memoryLimitMb` itself. That option bounds
 * the worker's JavaScript heap (and the Arrow data a whole read may hold); DuckDB's buffer manager
 * is native memory beside it, and gets the same number as its own ceiling. Not more: whoever sets
 * a small limit shares the machine between workers. And it need not be more: DuckDB spills what
 * it can to its temporary folder, and its limit is a ceiling, not a reservation. What cannot
 * spill is a reader's buffers, which DuckDB sizes for a machine, not for a limit, so dpf sizes
 * them for the limit: see {@link csvBufferBytes}.
 */
export function configureDuckDB(next: DuckDBSettings): void {
  settings = next;
}

export function duckdbSettings(): DuckDBSettings {
  return settings;
}

/** DuckDB's default `max_line_size` of `read_csv`, in bytes. */
const DEFAULT_MAX_LINE_BYTES = 2_000_000;
/** DuckDB's default `buffer_size` of `read_csv`: 16 lines of the maximum size. */
const DEFAULT_CSV_BUFFER_BYTES = 16 * DEFAULT_MAX_LINE_BYTES;
/** The share of DuckDB's memory limit one CSV buffer may take. */
const CSV_BUFFERS_PER_LIMIT = 8;

/**
 * The `buffer_size` this worker's `read_csv` calls pass, or undefined for DuckDB's default (no
 * memory limit, or one of 256 MB or more).
 *
 * DuckDB's CSV reader allocates whole buffers of `buffer_size` bytes — 32 MB by default, however
 * small the file — and holds two or more at once (more with more threads), in memory that
 * does not spill: under a limit below about 96 MB even a 2-row CSV failed
 * with "Out of Memory Error: could not allocate block of size 30.5 MiB". So under a limit a
 * buffer is an eighth of it, which leaves most of the limit to the query and its result:
 * - at least 2,000,000 bytes, DuckDB's default `max_line_size`: given `buffer_size` alone, DuckDB
 *   takes it as the longest line it accepts too (a line must fit in a buffer), so every file
 *   DuckDB reads by default still reads, and lines up to `buffer_size` are accepted;
 * - at most DuckDB's default of 32 MB.
 * Big files are read buffer after buffer, so `batches()` streams a CSV of any size under any
 * limit. Measured with DuckDB 1.5 (1, 2 and 4 threads, limits of 16 to 255 MB): a 97 MB CSV
 * streamed and a 30 MB one was read whole; buffers of a quarter of the limit ran out of memory
 * with 4 threads at 64 MB. (A smaller buffer lowers one DuckDB defect's threshold: a last line
 * longer than about two buffers — far past the default line limit — is dropped instead of
 * refused; by default that happens past about 32 MB.)
 */
export function csvBufferBytes(): number | undefined {
  const limitMb = settings.memoryLimitMb;
  if (limitMb === undefined) return undefined;
  // DuckDB reads "MB" as 10^6 bytes, as memory_limit is given (see duckdb-engine.ts).
  const share = Math.floor((limitMb * 1_000_000) / CSV_BUFFERS_PER_LIMIT);
  if (share >= DEFAULT_CSV_BUFFER_BYTES) return undefined;
  return Math.max(DEFAULT_MAX_LINE_BYTES, share);
}
