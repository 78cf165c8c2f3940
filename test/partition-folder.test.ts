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

describe('partition folders of long ids', () => {
  const encodings: FolderEncoding[] = [
    { keepSlashes: false, caseInsensitive: false },
    { keepSlashes: true, caseInsensitive: false },
    { keepSlashes: false, caseInsensitive: true },
  ];
  const longIds = ['k'.repeat(300), 'é'.repeat(130), 'K'.repeat(300), 't'.repeat(250) + 'a', 't'.repeat(250) + 'b', '%'.repeat(100), '_'.repeat(400), 'x'.repeat(160), 'x'.repeat(161)];

  it.each(encodings)('fit a file system name and stay distinct from each other and from short ids (%o)', (encoding) => {
    const folders = new Map<string, string>();
    for (const id of [...longIds, ...IDS]) {
      const folder = encodePartitionFolder(id, encoding);
      for (const segment of folder.split('/')) expect(Buffer.byteLength(segment), id.slice(0, 20)).toBeLessThanOrEqual(160);
      expect(folder.split('/')[0]).not.toBe('_dpf');
      const key = encoding.caseInsensitive ? folder.toLowerCase() : folder;
      expect(folders.get(key), `${id.slice(0, 20)} shares a folder`).toBeUndefined();
      folders.set(key, id);
      // The same id always gets the same folder (a resume finds its partitions again).
      expect(encodePartitionFolder(id, encoding)).toBe(folder);
    }
    // A shortened folder keeps the id's beginning, readable.
    expect(encodePartitionFolder('k'.repeat(300), encoding).startsWith('k'.repeat(100))).toBe(true);
  });

  it('shorten each long segment of a stage-mode path on its own', () => {
    const folder = encodePartitionFolder(`sales/${'é'.repeat(100)}/q1.csv`, { keepSlashes: true, caseInsensitive: true });
    const segments = folder.split('/');
    expect(segments[0]).toBe('sales');
    expect(segments[1]).toMatch(/^(%C3%A9)+%~[0-9a-f]{32}$/);
    expect(segments[2]).toBe('q1.csv');
  });
});
