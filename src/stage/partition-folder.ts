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
 * - a segment whose encoded name is longer than {@link MAX_SEGMENT_BYTES} (file systems allow 255
 *   bytes a name; a DataFrame key may be any length) keeps its first bytes and ends in `%~` and a
 *   hash of the whole segment: `%~` is never produced by percent-encoding, so such a name cannot
 *   be another id's, and two long ids apart after their first bytes stay apart. Such a folder is
 *   not reversible by itself: the run's partition list holds every partition's id and folder, and
 *   is what readers use (nothing in dpf decodes a folder name to find its id).
 *
 * SQL NULL (DataFrame mode) has its own folder, `%null`, which no string encodes to.
 */

import { createHash } from 'node:crypto';

import type { FolderEncoding } from '../model/run-spec.js';

const NULL_FOLDER = '%null';
/**
 * The longest folder name a segment keeps as it is, in UTF-8 bytes: below the 255 of ext4, APFS
 * and NTFS with room for what dpf adds, and short enough that a path of a few such segments stays
 * inside S3's 1,024-byte key.
 */
export const MAX_SEGMENT_BYTES = 160;
const HASHED_MARK = '%~';
const KEPT_PREFIX_BYTES = MAX_SEGMENT_BYTES - HASHED_MARK.length - 32;
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
  const encoded = encodeWhole(segment, first, encoding);
  return Buffer.byteLength(encoded) <= MAX_SEGMENT_BYTES ? encoded : shortened(encoded, segment);
}

/** The first bytes of an over-long encoded segment, cut between characters and escapes, then `%~` and a hash of the segment. */
function shortened(encoded: string, segment: string): string {
  let prefix = '';
  let bytes = 0;
  for (const unit of encoded.match(/%[0-9A-F]{2}|!.|[\s\S]/gu) ?? []) {
    bytes += Buffer.byteLength(unit);
    if (bytes > KEPT_PREFIX_BYTES) break;
    prefix += unit;
  }
  const hash = createHash('sha256').update(segment).digest('hex').slice(0, 32);
  return `${prefix}${HASHED_MARK}${hash}`;
}

function encodeWhole(segment: string, first: boolean, encoding: FolderEncoding): string {
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
  if (segment.includes(HASHED_MARK)) throw new Error(`the folder name "${segment}" is shortened: its partition id is in the run's partition list`);
  if (segment === EMPTY_SEGMENT) return '';
  const unfolded = encoding.caseInsensitive ? segment.replace(/!([a-z])/g, (_, letter: string) => letter.toUpperCase()) : segment;
  return decodeURIComponent(unfolded);
}
