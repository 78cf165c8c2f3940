/**
 * Partition ids become folder names inside a run, reversibly and safely.
 *
 * Rules, per path segment:
 * - `%`, `/` (unless it separates stage-mode sub-folders), control characters and the characters
 *   Windows forbids (`<>:"\|?*`) are percent-encoded, so any string maps to a legal name;
 * - the segments `.` and `..` are encoded whole (`%2E`, `%2E%2E`) so no id can leave the run;
 * - the empty segment becomes `%` alone, which percent-encoding never produces;
 * - a leading `_` of the first segment is encoded, so no partition can be named `_dpf`, the
 *   run's own folder;
 * - on a case-insensitive stage (macOS, Windows), upper-case letters become `!` + the lower-case
 *   letter and `!` itself is encoded (the escaping Go's module cache uses), and non-ASCII is
 *   percent-encoded, so ids that differ only by case or Unicode normalisation stay apart. On a
 *   case-sensitive stage (Linux, S3) names keep their case and Unicode as they are.
 *
 * SQL NULL (DataFrame mode) has its own folder, `%null`, which no string encodes to.
 */

import type { FolderEncoding } from '../model/run-spec.js';

const NULL_FOLDER = '%null';
const EMPTY_SEGMENT = '%';
// Characters that are kept as they are on every stage; everything else is checked.
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be encoded
const FORBIDDEN = /[\u0000-\u001f\u007f%<>:"\\|?*]/;

/** The folder (relative to the run) of a partition id, or of SQL NULL when `id` is null. */
export function encodePartitionFolder(id: string | null, encoding: FolderEncoding): string {
  if (id === null) return NULL_FOLDER;
  const segments = encoding.keepSlashes ? id.split('/') : [id];
  return segments.map((segment, index) => encodeSegment(segment, index === 0, encoding)).join('/');
}

/** The partition id a folder name stands for (the inverse of {@link encodePartitionFolder}). */
export function decodePartitionFolder(folder: string, encoding: FolderEncoding): string | null {
  if (folder === NULL_FOLDER) return null;
  const segments = encoding.keepSlashes ? folder.split('/') : [folder];
  return segments.map((segment) => decodeSegment(segment, encoding)).join('/');
}

// Names made only of these need no encoding on a case-sensitive stage (the common case, checked first).
const PLAIN = /^[A-Za-z0-9][A-Za-z0-9 ._=,+@#$&()[\]{}-]*$/;

function encodeSegment(segment: string, first: boolean, encoding: FolderEncoding): string {
  if (!encoding.caseInsensitive && PLAIN.test(segment) && segment !== '.' && segment !== '..') return segment;
  if (segment === '') return EMPTY_SEGMENT;
  if (segment === '.' || segment === '..') return segment.replace(/\./g, '%2E');
  let out = '';
  for (const char of segment) {
    out += encodeChar(char, encoding);
  }
  if (first && out.startsWith('_')) out = '%5F' + out.slice(1);
  return out;
}

function encodeChar(char: string, encoding: FolderEncoding): string {
  if (char === '/' || FORBIDDEN.test(char)) return percent(char);
  if (!encoding.caseInsensitive) return char;
  if (char === '!') return '%21';
  if (char >= 'A' && char <= 'Z') return '!' + char.toLowerCase();
  if (char.charCodeAt(0) > 0x7e) return percent(char);
  return char;
}

function percent(char: string): string {
  let out = '';
  for (const byte of Buffer.from(char, 'utf8')) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  return out;
}

function decodeSegment(segment: string, encoding: FolderEncoding): string {
  if (segment === EMPTY_SEGMENT) return '';
  const unfolded = encoding.caseInsensitive ? segment.replace(/!([a-z])/g, (_, letter: string) => letter.toUpperCase()) : segment;
  return decodeURIComponent(unfolded);
}
