import type { ModuleReference } from '../model/run-spec.js';

/**
 * The `process.env` each run on a worker starts from, in the worker: what a fresh worker would
 * have. A worker starts with the driver's environment of the run it was started for, and the pool
 * gives it only to runs whose driver has that same environment (worker-pool.ts); what the
 * module's import sets (`dotenv/config`) is kept, but what a run's partitions set in
 * `process.env` does not reach the next run on the worker. (Within a run, it is like module-level
 * state: later partitions on the same worker see it.)
 */
type Environment = Record<string, string | undefined>;

const atStart: Environment = { ...process.env };
/** process.env as each module's first import in this worker left it. */
const afterImport = new Map<string, Environment>();

/** Imports a run's module with `load` and sets process.env to what the run starts from. */
export async function importForRun<T>(module: ModuleReference, load: () => Promise<T>): Promise<T> {
  const saved = afterImport.get(module.url);
  if (saved === undefined) {
    replaceEnvironment(atStart);
    const loaded = await load();
    afterImport.set(module.url, { ...process.env });
    return loaded;
  }
  const loaded = await load();
  replaceEnvironment(saved);
  return loaded;
}

function replaceEnvironment(target: Environment): void {
  for (const name of Object.keys(process.env)) if (!(name in target)) delete process.env[name];
  for (const [name, value] of Object.entries(target)) if (value !== undefined && process.env[name] !== value) process.env[name] = value;
}
