/**
 * How `dpf artifacts` prints an artifact: bytes as they are, except that binary never goes to a
 * terminal (it would garble it), and text on a terminal — JSON anywhere — ends with a newline,
 * so the shell's prompt starts on a line of its own.
 */

/** What to write for an artifact, or why it is not written. */
export type ArtifactOutput = { write: Uint8Array } | { refuse: string };

export function artifactOutput(bytes: Uint8Array, name: string, partitionId: string, terminal: boolean): ArtifactOutput {
  const text = isText(bytes);
  if (terminal && !text) {
    return {
      refuse: `artifact "${name}" of partition "${partitionId}" is binary (${bytes.length} bytes), so it is not printed on a terminal; copy it to a folder with --out DIR, or redirect it to a file`,
    };
  }
  // JSON's meaning does not change with a final newline; other text keeps its bytes when piped.
  const endLine = text && bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a && (terminal || name.toLowerCase().endsWith('.json'));
  return { write: endLine ? Buffer.concat([bytes, Buffer.from('\n')]) : bytes };
}

/** UTF-8 text: it decodes, and holds no control characters but tabs, line breaks, form feeds and escapes (colours). */
function isText(bytes: Uint8Array): boolean {
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return false;
  }
  for (let i = 0; i < decoded.length; i++) {
    const code = decoded.charCodeAt(i);
    if (code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0c && code !== 0x0d && code !== 0x1b) return false;
  }
  return true;
}
