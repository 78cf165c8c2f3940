import { StageDamagedError, StageFormatError } from '../errors.js';

/**
 * Every JSON document dpf keeps on a stage says what it is and which version of its format it is
 * in — `{"dpf": "lease", "format": 1, …}` — so a reader refuses what it does not know instead of
 * misreading it, and a damaged file is named, not a `SyntaxError … position 200`.
 */

/** The stored kinds and the format versions this dpf reads. */
export const FORMATS = {
  run: 2,
  partitions: 2,
  lease: 1,
  journal: 1,
  checkpoint: 1,
  input: 1,
} as const;

export type StoredKind = keyof typeof FORMATS;

/** The header every stored JSON document starts with. */
export interface StoredHeader<K extends StoredKind> {
  dpf: K;
  format: (typeof FORMATS)[K];
}

/**
 * Parses a stored JSON document and checks its kind and format. `where` names the file for the
 * message; `fix` says what the user can do about a damaged one.
 */
export function parseStored<T extends StoredHeader<StoredKind>>(text: string, where: string, kind: T['dpf'], fix: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = text.length === 0 ? 'is empty' : `is not valid JSON (${(error as Error).message})`;
    throw new StageDamagedError(where, `${where} ${reason}: the file is damaged; ${fix}`, { cause: error });
  }
  checkHeader(value, where, kind, fix);
  return value as T;
}

/** Checks a parsed document's header; throws a StageDamagedError or StageFormatError naming the file. */
export function checkHeader(value: unknown, where: string, kind: StoredKind, fix: string): void {
  const header = value as Partial<StoredHeader<StoredKind>> | null;
  if (header !== null && typeof header === 'object' && header.dpf === undefined && typeof header.format === 'number') {
    throw new StageFormatError(where, `${where} was written by an older dpf, whose runs this one cannot read; run it again with this one (onExistingArtifacts: 'overwrite')`);
  }
  if (header === null || typeof header !== 'object' || header.dpf !== kind) {
    const found = header !== null && typeof header === 'object' && typeof header.dpf === 'string' ? `a dpf "${header.dpf}" file` : 'no dpf file';
    throw new StageDamagedError(where, `${where} should be a dpf ${kind} file but is ${found}: the file is damaged or was replaced; ${fix}`);
  }
  if (header.format !== FORMATS[kind]) {
    throw new StageFormatError(
      where,
      `${where} is in format ${String(header.format)} of dpf's ${kind} files, and this dpf reads format ${FORMATS[kind]}: ` +
        (typeof header.format === 'number' && header.format > FORMATS[kind] ? 'it was written by a newer dpf; upgrade dpf to read it' : 'it was written by an older dpf; run it again with this one'),
    );
  }
}
