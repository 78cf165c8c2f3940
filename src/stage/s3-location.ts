import { InvalidOptionError } from '../errors.js';

/** A location `s3://bucket/prefix`, split. */
export interface S3Location {
  bucket: string;
  /** The key prefix, without leading or trailing `/` (empty for the bucket's root). */
  prefix: string;
}

/** Parses `s3://bucket/prefix`; throws InvalidOptionError naming `option` when it is not one. */
export function parseS3Location(location: string, option: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (match === null) throw new InvalidOptionError(option, `expected s3://bucket/prefix, got ${location}`);
  const bucket = match[1]!;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new InvalidOptionError(option, `"${bucket}" is not a valid S3 bucket name (3 to 63 lower-case letters, digits, "." and "-")`);
  }
  const prefix = match[2]!.replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((segment) => segment === '..' || (prefix !== '' && segment === ''))) {
    throw new InvalidOptionError(option, `${location}: the prefix must not hold "..", or empty segments`);
  }
  return { bucket, prefix };
}

/** Whether a location names an S3 prefix (`s3://…`). */
export function isS3Location(location: unknown): boolean {
  return typeof location === 'string' && location.startsWith('s3://');
}
