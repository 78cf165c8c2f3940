import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError } from '../errors.js';
import { LocalStage } from './local-stage.js';
import type { Stage } from './stage.js';

/**
 * Opens the stage a user named: a local folder path or `file:` URL. With `create: false`, a
 * folder that does not exist gives undefined instead of being created.
 */
export async function openStage(location: string | URL, options: { create: boolean }): Promise<Stage | undefined> {
  const folder = stageFolder(location);
  if (!options.create && !existsSync(folder)) return undefined;
  return LocalStage.open(folder);
}

/** The absolute folder of a local stage, refusing what dpf cannot use as one yet. */
export function stageFolder(location: unknown): string {
  if (location instanceof URL) {
    if (location.protocol !== 'file:') throw new InvalidOptionError('stage', `expected a folder path or file: URL, got ${location.href}`);
    return fileURLToPath(location);
  }
  if (typeof location !== 'string' || location.trim() === '') {
    throw new InvalidOptionError('stage', 'expected the folder that keeps runs, e.g. { stage: "./stage" }');
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location) && !location.startsWith('file://')) {
    throw new InvalidOptionError('stage', `${location}: only local folders are supported as stages so far; use a folder path (a shared file system works across machines)`);
  }
  return resolve(location.startsWith('file://') ? fileURLToPath(location) : location);
}
