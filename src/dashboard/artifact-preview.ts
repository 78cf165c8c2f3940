import { duckdbReader, tableFormatOf } from '../data/file-format.js';
import { loadArrow, loadDuckDBEngine } from '../data/lazy-modules.js';
import type { SinglePartitionDetails } from '../run/partition-details.js';
import type { ArtifactPreview, PartitionView } from './api-types.js';
import { readArtifactHead } from './artifact-file.js';
import { imageType } from './download-headers.js';
import { redact } from './redact.js';

/** Rows a table preview shows. */
const PREVIEW_ROWS = 50;
/** Text a preview shows. */
const PREVIEW_TEXT_BYTES = 64 * 1024;
/** JSON bigger than this is shown as text (its start), not parsed and pretty-printed. */
const PRETTY_JSON_BYTES = 4 * 1024 * 1024;
/** Arrow IPC files up to this size are previewed (apache-arrow reads one whole). */
const ARROW_PREVIEW_BYTES = 64 * 1024 * 1024;
/** CSV files up to this size are counted for `totalRows` (a bigger one would be read whole for it). */
const COUNT_CSV_BYTES = 16 * 1024 * 1024;

/** How the page can show an artifact, from its name. */
export function previewKind(name: string): PartitionView['artifacts'][number]['preview'] {
  if (/\.json$/i.test(name)) return 'json';
  const format = tableFormatOf(name);
  if (format === 'parquet' || format === 'csv' || format === 'arrow') return /\.(gz|zst)$/i.test(name) ? 'none' : 'table';
  if (imageType(name) !== undefined) return 'image';
  return 'text';
}

/**
 * What the page shows of an artifact: JSON pretty-printed; Parquet, CSV and Arrow IPC's first 50
 * rows as strings (Parquet and CSV read by the embedded DuckDB from the artifact's local file,
 * Arrow by apache-arrow); an image as an <img> of its bytes (`downloadUrl?inline=1`); other
 * UTF-8 text, its first 64 KiB; anything else, none.
 */
export async function artifactPreview(details: SinglePartitionDetails, name: string, downloadUrl: string): Promise<ArtifactPreview> {
  const kind = previewKind(name);
  if (kind === 'image') return { kind: 'image', url: `${downloadUrl}?inline=1`, mediaType: imageType(name)! };
  if (kind === 'table') return details.artifacts.get(name, (path) => tablePreview(path, name));
  // Only the start of the file is read: JSON small enough to pretty-print, else the text preview's bytes (and a few, to tell a cut character).
  const { head, size } = await details.artifacts.get(name, (path) => readArtifactHead(path, name, Math.max(kind === 'json' ? PRETTY_JSON_BYTES : 0, PREVIEW_TEXT_BYTES + 4)));
  if (kind === 'json' && size <= PRETTY_JSON_BYTES) {
    try {
      return { kind: 'json', text: redact(JSON.stringify(JSON.parse(head.toString('utf8')), null, 2)) };
    } catch {
      // Not JSON after all: shown as text, if it is.
    }
  }
  return textPreview(head, size);
}

function textPreview(bytes: Buffer, size: number): ArtifactPreview {
  const head = bytes.subarray(0, PREVIEW_TEXT_BYTES);
  let text: string;
  try {
    // `stream`: a character cut by the 64 KiB end is left out, not an error.
    text = new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: size > PREVIEW_TEXT_BYTES });
  } catch {
    return { kind: 'none', reason: 'binary content: download it to open it' };
  }
  if (text.includes('\u0000')) return { kind: 'none', reason: 'binary content: download it to open it' };
  return { kind: 'text', text: redact(text), truncated: size > PREVIEW_TEXT_BYTES };
}

async function tablePreview(path: string, name: string): Promise<ArtifactPreview> {
  const format = tableFormatOf(name);
  // Read through a handle that follows no link (DuckDB below reads the path itself: the check first).
  const { head, size } = await readArtifactHead(path, name, format === 'arrow' ? ARROW_PREVIEW_BYTES + 1 : 0);
  if (format === 'arrow') {
    if (size > ARROW_PREVIEW_BYTES) return { kind: 'none', reason: `${name} is ${(size / 1024 / 1024).toFixed(0)} MB, too big to preview (an Arrow file is read whole): download it to open it` };
    const { tableFromIPC } = await loadArrow();
    const table = tableFromIPC(head);
    const columns = table.schema.fields.map((field) => field.name);
    const rows: string[][] = [];
    for (let row = 0; row < Math.min(PREVIEW_ROWS, table.numRows); row++) {
      const values = table.get(row)?.toArray() ?? [];
      rows.push(columns.map((_, column) => cellText(values[column])));
    }
    return { kind: 'table', columns, rows, totalRows: table.numRows };
  }
  if (format !== 'parquet' && format !== 'csv') return { kind: 'none', reason: `no preview of ${name}` };
  const reader = duckdbReader(format, path);
  const { withReadConnection } = await loadDuckDBEngine();
  return withReadConnection(async (connection) => {
    const result = await connection.runAndReadAll(`SELECT * FROM ${reader} LIMIT ${PREVIEW_ROWS}`);
    const columns = result.columnNames();
    const rows = result.getRowsJS().map((row) => row.map(cellText));
    const preview: ArtifactPreview = { kind: 'table', columns, rows };
    if (format === 'parquet' || size <= COUNT_CSV_BYTES) {
      const count = (await connection.runAndReadAll(`SELECT count(*) FROM ${reader}`)).getRowsJS()[0]?.[0];
      if (count !== undefined) preview.totalRows = Number(count);
    }
    return preview;
  });
}

/** A cell as the table preview shows it: null as empty, dates in ISO form, nested values as JSON. */
function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return redact(value);
  if (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  try {
    const json = JSON.stringify(value, (_, inner: unknown) => (typeof inner === 'bigint' ? inner.toString() : inner));
    return redact(json ?? String(value));
  } catch {
    return redact(String(value));
  }
}
