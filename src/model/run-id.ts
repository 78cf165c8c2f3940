/**
 * What a runId may be: a name that is one folder on every stage — letters, digits, `.`, `_` and
 * `-`, starting with a letter or digit, at most 128 characters.
 */
export const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
