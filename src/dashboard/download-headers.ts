/** Image artifacts the page shows in an <img>, by extension. */
export const IMAGE_TYPES: Readonly<Record<string, string>> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
};

/** An artifact's image media type, by its name's extension; undefined when it is not an image the page shows. */
export function imageType(name: string): string | undefined {
  const extension = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase();
  return extension === undefined ? undefined : IMAGE_TYPES[extension];
}

/** `attachment; filename="…"; filename*=UTF-8''…`: the name as the download's file name (RFC 6266 with RFC 5987's encoding). */
export function contentDisposition(name: string, kind: 'attachment' | 'inline' = 'attachment'): string {
  const file = name.split('/').pop() ?? name;
  const fallback = file.replace(/[^\x20-\x7e]|["\\%;]/g, '_');
  const encoded = encodeURIComponent(file).replace(/['()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/**
 * The headers of an artifact's bytes: a download (`application/octet-stream`, attachment: no
 * artifact — HTML, SVG or anything — is ever shown as a page of the dashboard's origin); or, with
 * `inline` for an image the preview shows, its image type — an SVG then with a policy that lets
 * it run nothing even when opened by itself.
 */
export function downloadHeaders(name: string, inline: boolean): Record<string, string> {
  const image = inline ? imageType(name) : undefined;
  if (image === undefined) return { 'Content-Type': 'application/octet-stream', 'Content-Disposition': contentDisposition(name) };
  const headers: Record<string, string> = { 'Content-Type': image, 'Content-Disposition': contentDisposition(name, 'inline') };
  if (image === 'image/svg+xml') headers['Content-Security-Policy'] = "default-src 'none'; style-src 'unsafe-inline'; sandbox";
  return headers;
}
