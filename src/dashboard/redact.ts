/**
 * Strings the dashboard shows, without credentials. Applied to every string that comes from a run
 * (its input, warnings, errors, logs, previews), whatever wrote it there; it errs on the side of
 * hiding (a word that only looks like a secret's name loses its value too):
 * - the user information of every URL — up to the last `@` of the URL, as URL parsers split it
 *   (`postgres://admin:p@ss@db/x` → `postgres://db/x`, `redis://:secret@host` → `redis://host`);
 * - the value of `name=value` settings whose name holds password, passwd, pwd, secret or token
 *   (query parameters, libpq's `host=db password=…`, `PGPASSWORD=…`, `AWS_SECRET_ACCESS_KEY=…`);
 * - the value of such names in JSON (`"password": "…"`, `"secretAccessKey": "…"`).
 */
const USER_INFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s"'<>]*@/gi;
const SECRET_NAME = String.raw`[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|sslkey)[a-z0-9_.-]*`;
const SECRET_SETTING = new RegExp(String.raw`\b(${SECRET_NAME}\s*=\s*)[^&\s#,;'"]*`, 'gi');
const SECRET_JSON = new RegExp(String.raw`("${SECRET_NAME}"\s*:\s*)"(?:[^"\\]|\\.)*"`, 'gi');

export function redact(text: string): string {
  return text.replace(USER_INFO, '$1').replace(SECRET_SETTING, '$1***').replace(SECRET_JSON, '$1"***"');
}
