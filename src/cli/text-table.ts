/**
 * Lines of a table in aligned columns, two spaces apart, without trailing blanks. Cells must be
 * display-safe already (see display-text.ts). Widths are found in one pass, so a table of a
 * million rows costs no more than its cells.
 */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((title) => title.length);
  for (const row of rows) {
    for (let column = 0; column < widths.length; column++) widths[column] = Math.max(widths[column]!, row[column]!.length);
  }
  const format = (row: readonly string[]): string => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  return [format(header), ...rows.map(format)];
}
