import { InvalidOptionError } from '../errors.js';

/** `dpf run`'s flags, as commander parsed them. */
export interface RunFlags {
  stage: string;
  runId: string;
  partitionBy?: string[];
  source?: string;
  from?: string;
  pattern?: string;
  export?: string;
  resume?: boolean;
  overwrite?: boolean;
  maxRetries?: number;
  timeoutMs?: number;
  isolation?: 'thread' | 'process';
  concurrency?: number;
  args?: unknown;
}

/** `--partition-by a,b` as columns. */
export function parseColumns(value: string): string[] {
  return value.split(',').map((column) => column.trim());
}

/** `--args '{"k": 1}'`: JSON, or a message naming the flag. */
export function parseArgs(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new InvalidOptionError('--args', `takes JSON, such as '{"maxDepth": 6}'; ${JSON.stringify(value)} is not JSON (${(error as Error).message})`);
  }
}
