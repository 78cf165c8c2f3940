/** A value that JSON keeps exactly: what `args` of a run may be, and what a layer records with a run. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
