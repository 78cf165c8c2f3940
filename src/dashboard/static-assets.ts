import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The page's folder: `assets/dashboard/` at the package's root (from src/dashboard/ and dist/dashboard/ alike). */
const PAGE_FOLDER = fileURLToPath(new URL('../../assets/dashboard/', import.meta.url));

const MEDIA_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/** A file the dashboard serves: where it is, and its media type. */
export interface StaticFile {
  path: string;
  mediaType: string;
}

/**
 * The files the dashboard serves, by URL path: the page's folder as it is when the dashboard
 * starts (`/assets/app.js` → `assets/dashboard/app.js`, `/` → its index.html), and uPlot's script
 * and style from node_modules (`/assets/vendor/…`). A request's path is looked up here, never
 * joined into a file path.
 */
export function staticFiles(): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  let entries: string[] = [];
  try {
    entries = readdirSync(PAGE_FOLDER, { recursive: true, encoding: 'utf8' });
  } catch {
    // No page (a build without assets): the API still answers.
  }
  for (const entry of entries) {
    const type = MEDIA_TYPES[extname(entry).toLowerCase()];
    if (type === undefined) continue;
    const path = join(PAGE_FOLDER, entry);
    files.set(`/assets/${relative(PAGE_FOLDER, path).split(sep).join('/')}`, { path, mediaType: type });
  }
  const index = files.get('/assets/index.html');
  if (index !== undefined) files.set('/', index);
  const require = createRequire(import.meta.url);
  for (const name of ['uPlot.iife.min.js', 'uPlot.min.css']) {
    try {
      files.set(`/assets/vendor/${name}`, { path: require.resolve(`uplot/dist/${name}`), mediaType: MEDIA_TYPES[extname(name)]! });
    } catch {
      // uPlot not installed: the page draws no charts.
    }
  }
  return files;
}

/** A served file's bytes (read on each request: small files, and a page being edited shows its changes). */
export function readStaticFile(file: StaticFile): Promise<Buffer> {
  return readFile(file.path);
}
