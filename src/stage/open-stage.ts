import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError } from '../errors.js';
import { LocalStage } from './local-stage.js';
import { isS3Location, parseS3Location } from './s3-location.js';
import type { Stage } from './stage.js';

/**
 * Opens the stage a user named: a local folder path, a `file:` URL, or `s3://bucket/prefix`.
 * With `create: false`, a local folder that does not exist gives undefined instead of being
 * created (an S3 prefix always "exists"; a run under it may not).
 */
export async function openStage(location: string | URL, options: { create: boolean }): Promise<Stage | undefined> {
  const resolved = stageLocation(location, 'stage');
  if (isS3Location(resolved)) {
    const { S3Stage } = await import('./s3-stage.js');
    const stage = new S3Stage(parseS3Location(resolved, 'stage'));
    // A process that starts runs makes sure the store can keep them right first.
    if (options.create) await stage.checkConditionalWrites();
    return stage;
  }
  if (!options.create && !existsSync(resolved)) return undefined;
  return LocalStage.open(resolved);
}

/**
 * Opens a stage another process opened already, from its location as the spec records it (a
 * worker's view): no folder creation, no probing.
 */
export async function attachStage(location: string, caseInsensitive: boolean): Promise<Stage> {
  if (isS3Location(location)) {
    const { S3Stage } = await import('./s3-stage.js');
    return new S3Stage(parseS3Location(location, 'stage'));
  }
  return LocalStage.attach(location, caseInsensitive);
}

/**
 * A stage location, resolved: the absolute folder of a local stage, or the `s3://bucket/prefix`
 * of an S3 one. Refuses what dpf cannot use, naming `option`.
 */
export function stageLocation(location: unknown, option: string): string {
  if (location instanceof URL) {
    if (location.protocol === 's3:') return canonicalS3(location.href, option);
    if (location.protocol !== 'file:') throw new InvalidOptionError(option, `expected a folder path, a file: URL or s3://bucket/prefix, got ${location.href}`);
    return fileURLToPath(location);
  }
  if (typeof location !== 'string' || location.trim() === '') {
    throw new InvalidOptionError(option, 'expected a folder, e.g. "./stage", or an S3 prefix, e.g. "s3://my-bucket/dpf"');
  }
  if (isS3Location(location)) return canonicalS3(location, option);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location) && !location.startsWith('file://')) {
    throw new InvalidOptionError(option, `${location}: dpf keeps runs in a local folder (a shared file system works across machines) or under s3://bucket/prefix`);
  }
  return resolve(location.startsWith('file://') ? fileURLToPath(location) : location);
}

function canonicalS3(location: string, option: string): string {
  const { bucket, prefix } = parseS3Location(location, option);
  return `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
}
