/**
 * How the `dpf` command shows values on a terminal: nothing it prints from a run (ids, error
 * messages) can move the cursor, break a table's line or colour the terminal, and ids shown
 * escaped are taken back as shown.
 */

/**
 * Characters a terminal acts on instead of showing: C0 and C1 controls (line breaks, tabs,
 * escapes), DEL, line and paragraph separators, and the bidirectional controls that reorder text.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');

/**
 * A partition id as tables show it: as it is, or — when it holds a character a terminal acts on,
 * is empty, starts with `"`, or starts or ends with a space — as a JSON string (`"two\nlines"`),
 * which {@link shownId} turns back into the id.
 */
export function displayId(id: string): string {
  if (id !== '' && !UNSAFE.test(id) && !id.startsWith('"') && id.trim() === id) return id;
  return JSON.stringify(id).replace(UNSAFE_ALL, escapeChar);
}

/** Text for a table cell: the characters a terminal acts on as escapes (`\n`, `\t`, `\u001b`). */
export function displayText(text: string): string {
  return text.replace(UNSAFE_ALL, (char) => (char === '\n' ? '\\n' : char === '\t' ? '\\t' : char === '\r' ? '\\r' : escapeChar(char)));
}

/** The id a partition argument names, when it is written as {@link displayId} shows an id in quotes. */
export function shownId(argument: string): string | undefined {
  if (!argument.startsWith('"') || !argument.endsWith('"') || argument.length < 2) return undefined;
  try {
    const id: unknown = JSON.parse(argument);
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** A count with thousands separators: `1,000,000`. */
export function formatCount(count: number): string {
  return count.toLocaleString('en-US');
}

/** A moment in local time, to the second: `2024-03-01 14:05:09`. */
export function formatTime(time: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${time.getFullYear()}-${two(time.getMonth() + 1)}-${two(time.getDate())} ${two(time.getHours())}:${two(time.getMinutes())}:${two(time.getSeconds())}`;
}

function escapeChar(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** A word as a shell reads it back: as it is when plain, else in single quotes. */
export function shellWord(word: string): string {
  return /^[\w./:@%+=,-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}
