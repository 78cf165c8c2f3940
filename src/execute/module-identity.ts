import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ModuleMismatchError } from '../errors.js';
import type { ModuleReference, SharedModule } from '../model/run-spec.js';

/**
 * The project a file belongs to: the nearest folder at or above it with a package.json (what
 * `npm install` was run in). A queue run names its module relative to it, so a worker on another
 * machine, where the project lives elsewhere, finds its own copy.
 */
export function projectRootOf(path: string): string {
  let folder = resolve(path);
  for (;;) {
    if (existsSync(join(folder, 'package.json'))) return folder;
    const parent = dirname(folder);
    if (parent === folder) return dirname(resolve(path));
    folder = parent;
  }
}

/** The module's path relative to its project and the SHA-256 of its content, as a queue run records them. */
export async function shareModule(module: ModuleReference): Promise<SharedModule> {
  const path = fileURLToPath(module.url);
  const root = projectRootOf(dirname(path));
  return { path: relative(root, path).split(sep).join('/'), sha256: await fileHash(path) };
}

/**
 * Where a worker whose project is at `root` finds a queue run's module — provided its copy is the
 * one the run was submitted with; otherwise a ModuleMismatchError says what differs.
 */
export async function localModule(module: ModuleReference, root: string): Promise<ModuleReference> {
  const shared = module.shared;
  if (shared === undefined) return module;
  if (isAbsolute(shared.path) || shared.path.split('/').includes('..')) {
    throw new ModuleMismatchError(`the run's module path ${shared.path} is not inside a project`);
  }
  const path = join(root, ...shared.path.split('/'));
  const hash = await fileHash(path).catch(() => undefined);
  if (hash === undefined) {
    throw new ModuleMismatchError(`this worker's project (${root}) has no ${shared.path}, the run's partition module; install the same version of the project here, or start the worker in it (dpf worker --project DIR)`);
  }
  if (hash !== shared.sha256) {
    throw new ModuleMismatchError(
      `this worker's copy of ${shared.path} (in ${root}, sha256 ${hash.slice(0, 12)}…) differs from the run's (sha256 ${shared.sha256.slice(0, 12)}…); ` +
        'deploy the same version of the project to every worker, then restart this one',
    );
  }
  return { ...module, url: pathToFileURL(path).href };
}

async function fileHash(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}
