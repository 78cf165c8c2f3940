import { existsSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DataConnector } from '../data/data-connector.js';
import { InvalidOptionError, ModuleLoadError } from '../errors.js';
import type { JsonValue } from '../model/json-value.js';
import type { LayerReference, ModuleReference } from '../model/run-spec.js';
import type { PartitionContext } from './partition-context.js';

/**
 * The user's code: called once per partition with its data and its context. `Args` types
 * `context.args` (the run's `args` option).
 */
export type PartitionFunction<Args = unknown> = (data: DataConnector, context: PartitionContext<Args>) => unknown;

/** What `new DPF(module)` accepts: a path or URL, or one with the export to use. */
export type PartitionModule = string | URL | { module: string | URL; exportName?: string };

const TYPESCRIPT_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);
const MODULE_EXTENSIONS = new Set([...TYPESCRIPT_EXTENSIONS, '.js', '.mjs', '.cjs']);

/** Checks that the module file exists and has a supported extension. Does not import it. */
export function resolveModuleReference(input: PartitionModule): ModuleReference {
  const { location, exportName } =
    typeof input === 'string' || input instanceof URL
      ? { location: input, exportName: 'default' }
      : { location: input?.module, exportName: input?.exportName ?? 'default' };
  if (typeof exportName !== 'string' || exportName === '') {
    throw new InvalidOptionError('module.exportName', 'expected the name of an export, such as "default" or "train"');
  }
  const path = toPath(location);
  if (!MODULE_EXTENSIONS.has(extname(path))) {
    throw new ModuleLoadError(
      `The partition module ${path} is not a ${[...MODULE_EXTENSIONS].join(', ')} file; point DPF at the module that exports the function`,
    );
  }
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new ModuleLoadError(`The partition module ${path} does not exist; check the path (relative paths start at ${process.cwd()})`);
  }
  return { url: pathToFileURL(path).href, exportName };
}

function toPath(location: unknown): string {
  if (location instanceof URL) {
    if (location.protocol !== 'file:') throw new ModuleLoadError(`The partition module must be a file: URL or a path, got ${location.href}`);
    return fileURLToPath(location);
  }
  if (typeof location !== 'string' || location.trim() === '') {
    throw new InvalidOptionError('module', 'expected the path or URL of the module that exports the partition function');
  }
  return location.startsWith('file:') ? fileURLToPath(location) : resolve(location);
}

/**
 * Imports the module and returns the function workers call for each partition: its partition
 * function, or — a run of a layer on top (`reference.layer`, the many-model layer) — the layer's
 * wrapper around it. A TypeScript module is compiled on the fly by tsx (scoped to this import), so
 * it runs with no build step on every supported Node.
 */
export async function loadPartitionFunction(reference: ModuleReference): Promise<PartitionFunction> {
  const fn = await importPartitionFunction(reference);
  return reference.layer === undefined ? fn : wrapInLayer(fn, reference.layer, moduleExports(await loadModuleExports(reference)));
}

/** What a layer module exports (see LayerReference). */
interface LayerModule {
  /** `exports`: the function module's exports (where a layer finds what the user gave it, such as a serde). */
  wrapPartitionFunction(fn: PartitionFunction, options: JsonValue, exports: Readonly<Record<string, unknown>>): PartitionFunction | Promise<PartitionFunction>;
}

const LAYER_MODULE = /^[a-z]+(?:\/[a-z][a-z-]*)+$/;

/**
 * The layer's wrapper around `fn`. A layer is one of dpf's own modules, found next to this one
 * (in dist/ as `.js`, in src/ as `.ts`), never a path of the run's choosing.
 */
async function wrapInLayer(fn: PartitionFunction, layer: LayerReference, exports: Record<string, unknown>): Promise<PartitionFunction> {
  if (!LAYER_MODULE.test(layer.module)) throw new ModuleLoadError(`The run names the layer "${layer.module}", which is not one of dpf's; was it written by another version of dpf?`);
  const own = new URL(import.meta.url);
  const url = new URL(`../${layer.module}${extname(own.pathname)}`, own);
  let module: LayerModule;
  try {
    module = (await import(url.href)) as LayerModule;
  } catch (error) {
    throw new ModuleLoadError(`The run's layer ${layer.module} cannot be loaded from this dpf (${fileURLToPath(url)}): ${(error as Error).message}; is the same version of dpf installed?`, { cause: error });
  }
  return module.wrapPartitionFunction(fn, layer.options, exports);
}

async function importPartitionFunction(reference: ModuleReference): Promise<PartitionFunction> {
  const namespace = await loadModuleExports(reference);
  const path = fileURLToPath(reference.url);
  const fn = findExport(namespace, reference.exportName);
  if (typeof fn !== 'function') {
    const exported = Object.keys(namespace).filter((name) => typeof findExport(namespace, name) === 'function');
    throw new ModuleLoadError(
      fn === undefined
        ? `The partition module ${path} has no export named "${reference.exportName}"; its function exports are: ${exported.join(', ') || 'none'}`
        : `The export "${reference.exportName}" of ${path} is not a function`,
    );
  }
  return fn as PartitionFunction;
}

/** Each module's exports, imported once per process (a module's top level runs once, as Node's own imports do). */
const imported = new Map<string, Promise<Record<string, unknown>>>();

/**
 * The partition module's namespace, imported once per process. A TypeScript module is compiled on
 * the fly by tsx, scoped to this import.
 */
export function loadModuleExports(reference: ModuleReference): Promise<Record<string, unknown>> {
  let loading = imported.get(reference.url);
  if (loading === undefined) {
    loading = importModule(reference.url);
    imported.set(reference.url, loading);
    loading.catch(() => imported.delete(reference.url));
  }
  return loading;
}

async function importModule(url: string): Promise<Record<string, unknown>> {
  const path = fileURLToPath(url);
  let namespace: Record<string, unknown>;
  try {
    if (TYPESCRIPT_EXTENSIONS.has(extname(path))) {
      const { tsImport } = await import('tsx/esm/api');
      namespace = (await tsImport(url, import.meta.url)) as Record<string, unknown>;
    } else {
      namespace = (await import(url)) as Record<string, unknown>;
    }
  } catch (error) {
    throw new ModuleLoadError(`Importing the partition module ${path} failed: ${(error as Error).message}`, { cause: error });
  }
  return namespace;
}

/** A module's exports by name, as {@link loadModuleExports} gives them, with a CommonJS module's unwrapped from `default`. */
export function moduleExports(namespace: Record<string, unknown>): Record<string, unknown> {
  const wrapped = namespace.default;
  const names = new Set([...Object.keys(namespace), ...(wrapped !== null && typeof wrapped === 'object' ? Object.keys(wrapped) : [])]);
  return Object.fromEntries([...names].map((name) => [name, findExport(namespace, name)]));
}

// A CommonJS module (or TypeScript compiled as CommonJS) arrives with its exports under `default`.
function findExport(namespace: Record<string, unknown>, name: string): unknown {
  const direct = namespace[name];
  const wrapped = namespace.default;
  if (wrapped !== null && typeof wrapped === 'object' && name in wrapped) {
    const inner = (wrapped as Record<string, unknown>)[name];
    if (typeof direct !== 'function' && inner !== undefined) return inner;
  }
  return direct;
}
