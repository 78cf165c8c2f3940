import { InvalidOptionError, ModelSerdeError } from '../errors.js';
import type { JsonValue } from '../model/json-value.js';
import { checkArtifactName } from '../stage/artifact-name.js';
import { keepsRawBytes } from '../stage/artifact-format.js';

/**
 * How the many-model layer saves a partition's model to its artifact and loads it back
 * (Snowflake's `ModelSerde`): `save` writes the model to a local file, `load` reads one. Use the
 * built-ins — {@link jsonSerde} for models that serialise to JSON (the mljs models' `toJSON()`
 * and static `load`), {@link bytesSerde} for bytes (ONNX files and other binary formats) — or
 * write your own for any format.
 *
 * Workers save and load models, so they must be able to get the serde: a built-in is described
 * by its options; any other serde (or a built-in with a `loader`) is taken from the function's
 * module — export it there (`export const serde = …`). A module that exports a serde named
 * `serde` uses it when none is given.
 *
 * @example
 * ```ts
 * export const serde: ModelSerde<Booster> = {
 *   filename: 'model.ubj',
 *   save: (model, path) => model.saveModel(path),
 *   load: (path) => Booster.fromFile(path),
 * };
 * ```
 */
export interface ModelSerde<M = unknown> {
  /** The model artifact's file name in each partition's folder (flat, such as `model.json`). */
  readonly filename: string;
  /** Writes the model to the local file `path`. */
  save(model: M, path: string): unknown;
  /** Reads a model from the local file `path`. */
  load(path: string): M | Promise<M>;
}

/**
 * What turns saved JSON or bytes back into a live model: a function, or a class with a static
 * `load` (as mljs models have: `RandomForestRegression.load(json)`).
 */
export type ModelLoader<M, From> = ((saved: From) => M | Promise<M>) | { load(saved: From): M | Promise<M> };

/** Options of {@link jsonSerde}. */
export interface JsonSerdeOptions<M> {
  /**
   * The artifact's name; it must end in `.json`.
   * @defaultValue `'model.json'`
   */
  filename?: string;
  /**
   * Makes the live model from the parsed JSON, so `getModel` and inference functions get a model
   * with its methods, not a plain object.
   * @defaultValue the parsed JSON itself
   */
  loader?: ModelLoader<M, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Options of {@link bytesSerde}. */
export interface BytesSerdeOptions<M> {
  /**
   * The artifact's name, such as `model.onnx`; not one whose extension dpf reads as a format
   * (`.json`, `.parquet`, `.csv`, `.arrow`, `.txt`, …), so the bytes stay as they are.
   * @defaultValue `'model.bin'`
   */
  filename?: string;
  /**
   * Makes the live model from the bytes (`(bytes) => ort.InferenceSession.create(bytes)`).
   * @defaultValue the bytes, as a `Buffer`
   */
  loader?: ModelLoader<M, Buffer>;
}

/** A built-in serde's description: what a worker needs to make the same serde (its loader aside). */
export type BuiltinSerde = { kind: 'json'; filename: string } | { kind: 'bytes'; filename: string };

/**
 * How a run's workers get its serde, as the run records it: a built-in by its description, or an
 * export of the function's module.
 */
export type SerdeReference = BuiltinSerde | { kind: 'export'; exportName: string; filename: string };

const BUILTIN = Symbol('dpf.serde');

/** What the layer keeps of a built-in serde: how to save and load without a file. */
interface Builtin<M> {
  description: BuiltinSerde;
  hasLoader: boolean;
  /** The value `uploadToStage` writes to the artifact (packed with the small ones when small). */
  toArtifact(model: M): unknown;
  /** The model from what `artifacts.get`/`downloadFromStage` read back. */
  fromArtifact(saved: unknown): M | Promise<M>;
}

type Tagged<M> = ModelSerde<M> & { [BUILTIN]?: Builtin<M> };

/**
 * A serde for models that serialise to JSON: `save` writes `JSON.stringify(model)` (which calls
 * the model's `toJSON()`), `load` parses the file and hands the value to `loader`.
 *
 * @example
 * ```ts
 * import { RandomForestRegression } from 'ml-random-forest';
 * export const serde = jsonSerde({ loader: RandomForestRegression });   // RandomForestRegression.load(json)
 * ```
 */
export function jsonSerde<M = unknown>(options: JsonSerdeOptions<M> = {}): ModelSerde<M> {
  const filename = options.filename ?? 'model.json';
  checkSerdeFilename(filename, 'jsonSerde');
  if (!filename.toLowerCase().endsWith('.json')) throw new InvalidOptionError('jsonSerde.filename', `"${filename}" must end in .json`);
  const loader = options.loader === undefined ? undefined : checkLoader(options.loader, 'jsonSerde.loader');
  const fromArtifact = (saved: unknown): M | Promise<M> => (loader === undefined ? (saved as M) : loader(saved));
  const serde: Tagged<M> = {
    filename,
    save: async (model, path) => {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(path, jsonOf(model, filename));
    },
    load: async (path) => {
      const { readFile } = await import('node:fs/promises');
      return fromArtifact(JSON.parse(await readFile(path, 'utf8')));
    },
  };
  serde[BUILTIN] = { description: { kind: 'json', filename }, hasLoader: loader !== undefined, toArtifact: (model) => jsonable(model, filename), fromArtifact };
  return serde;
}

/**
 * A serde for models that are bytes (`Uint8Array`/`Buffer`): an ONNX file, a booster's binary
 * dump. `save` writes them as they are; `load` gives them to `loader`.
 *
 * @example
 * ```ts
 * import * as ort from 'onnxruntime-node';
 * export const serde = bytesSerde({ filename: 'model.onnx', loader: (bytes) => ort.InferenceSession.create(bytes) });
 * ```
 */
export function bytesSerde<M = Buffer>(options: BytesSerdeOptions<M> = {}): ModelSerde<M> {
  const filename = options.filename ?? 'model.bin';
  checkSerdeFilename(filename, 'bytesSerde');
  if (!keepsRawBytes(filename)) {
    throw new InvalidOptionError('bytesSerde.filename', `"${filename}" has an extension dpf reads as a format, not bytes; name it for its format, such as model.onnx or model.bin`);
  }
  const loader = options.loader === undefined ? undefined : checkLoader(options.loader, 'bytesSerde.loader');
  const fromArtifact = (saved: unknown): M | Promise<M> => (loader === undefined ? (saved as M) : loader(saved as Buffer));
  const toArtifact = (model: unknown): Uint8Array => {
    if (model instanceof Uint8Array) return model;
    throw new ModelSerdeError(`bytesSerde ("${filename}") saves bytes, and the model is ${describeModel(model)}; return a Uint8Array or Buffer (an ONNX model's bytes), or use jsonSerde or a serde of your own`);
  };
  const serde: Tagged<M> = {
    filename,
    save: async (model, path) => {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(path, toArtifact(model));
    },
    load: async (path) => {
      const { readFile } = await import('node:fs/promises');
      return fromArtifact(await readFile(path));
    },
  };
  serde[BUILTIN] = { description: { kind: 'bytes', filename }, hasLoader: loader !== undefined, toArtifact, fromArtifact };
  return serde;
}

/** The built-in part of a serde made by {@link jsonSerde} or {@link bytesSerde}; undefined for any other. */
export function builtinOf<M>(serde: ModelSerde<M>): Builtin<M> | undefined {
  return (serde as Tagged<M>)[BUILTIN];
}

/** The built-in serde a description names (without a loader: what a worker can make of it alone). */
export function builtinSerde(description: BuiltinSerde): ModelSerde {
  return description.kind === 'json' ? jsonSerde({ filename: description.filename }) : bytesSerde({ filename: description.filename });
}

/** Asserts `value` is a serde (`{ filename, save, load }`), naming `option` when it is not. */
export function checkSerde(value: unknown, option: string): ModelSerde {
  const serde = value as Partial<ModelSerde> | null;
  if (serde === null || typeof serde !== 'object' || typeof serde.save !== 'function' || typeof serde.load !== 'function' || typeof serde.filename !== 'string') {
    throw new InvalidOptionError(option, 'expected a ModelSerde: { filename, save(model, path), load(path) }, or jsonSerde() / bytesSerde()');
  }
  checkSerdeFilename(serde.filename, option);
  return serde as ModelSerde;
}

/**
 * How workers get `serde` (see {@link ModelSerde}): a built-in without a loader by its
 * description; any other by the export of the function's module that is a serde with the same
 * file name. `given` undefined: the module's `serde` export, else {@link jsonSerde}.
 */
export function serdeReference(given: ModelSerde | undefined, exports: Readonly<Record<string, unknown>>, modulePath: string): { serde: ModelSerde; reference: SerdeReference } {
  if (given === undefined) {
    if (exports.serde !== undefined) return { serde: checkSerde(exports.serde, `the export "serde" of ${modulePath}`), reference: { kind: 'export', exportName: 'serde', filename: (exports.serde as ModelSerde).filename } };
    const serde = jsonSerde();
    return { serde, reference: builtinOf(serde)!.description };
  }
  const builtin = builtinOf(given);
  if (builtin !== undefined && !builtin.hasLoader) return { serde: given, reference: builtin.description };
  const exported = Object.entries(exports).find(([, value]) => isSerdeLike(value) && (value as ModelSerde).filename === given.filename);
  if (exported === undefined) {
    throw new InvalidOptionError(
      'serde',
      `workers save and load the models in their own threads, and cannot get this serde ("${given.filename}") from this process: ` +
        `export it from ${modulePath} (export const serde = …), where workers find it${builtin !== undefined ? '; or leave out its loader' : ''}`,
    );
  }
  return { serde: given, reference: { kind: 'export', exportName: exported[0], filename: given.filename } };
}

/** The serde a reference names: a built-in made anew, or the export of the module whose `exports` are given. */
export function resolveSerde(reference: SerdeReference, exports: Readonly<Record<string, unknown>> | undefined, modulePath: string): ModelSerde {
  if (reference.kind !== 'export') return builtinSerde(reference);
  const value = exports?.[reference.exportName];
  if (!isSerdeLike(value) || (value as ModelSerde).filename !== reference.filename) {
    throw new ModelSerdeError(
      `the run's models are saved by the serde exported as "${reference.exportName}" from ${modulePath} (file "${reference.filename}"), and that module ${value === undefined ? 'has no such export' : 'exports something else under that name'} here; ` +
        'restore the module, or pass the serde yourself (serde option)',
    );
  }
  return value as ModelSerde;
}

/** The serde as plain JSON, for the layer's options. */
export function referenceJson(reference: SerdeReference): JsonValue {
  return { ...reference };
}

function isSerdeLike(value: unknown): boolean {
  const serde = value as Partial<ModelSerde> | null;
  return serde !== null && typeof serde === 'object' && typeof serde.save === 'function' && typeof serde.load === 'function' && typeof serde.filename === 'string';
}

function checkSerdeFilename(filename: unknown, option: string): void {
  if (typeof filename !== 'string') throw new InvalidOptionError(`${option}.filename`, 'expected a file name such as model.json');
  try {
    checkArtifactName(filename, 'ModelSerde');
  } catch (error) {
    throw new InvalidOptionError(`${option}.filename`, (error as Error).message);
  }
}

function checkLoader<M, From>(loader: ModelLoader<M, From>, option: string): (saved: From) => M | Promise<M> {
  if (typeof loader === 'function' && typeof (loader as { load?: unknown }).load === 'function') {
    // A class with a static load (the mljs models): its load, bound to it.
    return (saved) => (loader as unknown as { load(saved: From): M | Promise<M> }).load(saved);
  }
  if (typeof loader === 'function') return loader as (saved: From) => M | Promise<M>;
  if (loader !== null && typeof loader === 'object' && typeof loader.load === 'function') return (saved) => loader.load(saved);
  throw new InvalidOptionError(option, 'expected a function (saved) => model, or a class with a static load(saved)');
}

/** The model, refused when JSON cannot hold it (an artifact's JSON writer then calls its toJSON()). */
function jsonable(model: unknown, filename: string): unknown {
  if (model === undefined || typeof model === 'function' || typeof model === 'symbol') {
    throw new ModelSerdeError(`jsonSerde ("${filename}") cannot save ${describeModel(model)} as JSON; return the model (an object with toJSON(), or plain data)`);
  }
  return model;
}

function jsonOf(model: unknown, filename: string): string {
  jsonable(model, filename);
  const text = JSON.stringify(model, (_, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  if (text === undefined) throw new ModelSerdeError(`jsonSerde ("${filename}") got nothing to save from ${describeModel(model)}: its toJSON() returned undefined`);
  return text;
}

export function describeModel(model: unknown): string {
  if (model === undefined) return 'undefined';
  if (model === null) return 'null';
  if (typeof model === 'object') return `a ${(model as { constructor?: { name?: string } }).constructor?.name ?? 'object'}`;
  return `a ${typeof model}`;
}
