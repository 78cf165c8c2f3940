/**
 * Strings the dashboard shows, without credentials: the user information of every URL in them
 * (`redis://:secret@host` → `redis://host`, `postgres://user:pw@host/db` → `postgres://host/db`)
 * and the value of password-like query parameters. Applied to every string that comes from a run
 * (its input, warnings, errors, logs), whatever wrote it there.
 */
const USER_INFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi;
const SECRET_PARAMETER = /([?&;](?:password|sslpassword|passwd|pwd|secret|token|access_token|sslkey)=)[^&\s#]*/gi;

export function redact(text: string): string {
  return text.replace(USER_INFO, '$1').replace(SECRET_PARAMETER, '$1***');
}
