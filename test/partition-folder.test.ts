import { describe, expect, it } from 'vitest';
import type { FolderEncoding } from '../src/model/run-spec.js';
import { decodePartitionFolder, encodePartitionFolder } from '../src/stage/partition-folder.js';

const IDS = ['ATL', 'atl', 'Atl', '', '.', '..', '...', 'a/b', 'a/../b', '../up', '_dpf', '%41', '%', '!', 'a b', 'ünïcødé', 'e\u0301', 'é', 'x:y*z?', 'tab\there', 'new\nline', '数据/文件.csv', '/leading', 'trailing/', 'a//b'];

function checkEncoding(encoding: FolderEncoding, fold: (name: string) => string): void {
  const folders = new Map<string, string>();
  for (const id of IDS) {
    const folder = encodePartitionFolder(id, encoding);
    expect(decodePartitionFolder(folder, encoding), JSON.stringify(id)).toBe(id);
    const segments = folder.split('/');
    if (!encoding.keepSlashes) expect(segments).toHaveLength(1);
    for (const segment of segments) {
      expect(segment).not.toBe('');
      expect(segment).not.toBe('.');
      expect(segment).not.toBe('..');
      // eslint-disable-next-line no-control-regex -- control characters must never reach a folder name
      expect(segment).not.toMatch(/[\u0000-\u001f<>:"\\|?*]/);
    }
    expect(segments[0]).not.toBe('_dpf');
    const key = fold(folder);
    expect(folders.get(key), `${JSON.stringify(id)} and ${JSON.stringify(folders.get(key))} share a folder`).toBeUndefined();
    folders.set(key, id);
  }
  const nullFolder = encodePartitionFolder(null, encoding);
  expect(decodePartitionFolder(nullFolder, encoding)).toBeNull();
  expect(folders.has(fold(nullFolder))).toBe(false);
}

describe('partition folders', () => {
  it('are reversible, distinct and cannot leave the run on a case-sensitive stage', () => {
    checkEncoding({ keepSlashes: false, caseInsensitive: false }, (name) => name);
    checkEncoding({ keepSlashes: true, caseInsensitive: false }, (name) => name);
  });

  it('stay distinct on a case-insensitive, normalising stage (macOS, Windows)', () => {
    const fold = (name: string): string => name.normalize('NFD').toLowerCase();
    checkEncoding({ keepSlashes: false, caseInsensitive: true }, fold);
    checkEncoding({ keepSlashes: true, caseInsensitive: true }, fold);
    expect(encodePartitionFolder('ATL', { keepSlashes: false, caseInsensitive: true })).toBe('!a!t!l');
  });

  it('keep ordinary names readable', () => {
    const encoding = { keepSlashes: true, caseInsensitive: false };
    expect(encodePartitionFolder('sales/2024/Q1 report.csv', encoding)).toBe('sales/2024/Q1 report.csv');
    expect(encodePartitionFolder('ünïcødé.parquet', encoding)).toBe('ünïcødé.parquet');
  });
});
