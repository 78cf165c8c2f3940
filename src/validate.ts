import { closestName } from './closest-name.js';
import { InvalidOptionError } from './errors.js';

/**
 * Small checks for user-supplied options. Each names the option it checks, so the error a user
 * sees says exactly which key to fix (piscina's `options.maxThreads must be …`).
 */

/** Asserts `value` is a plain object whose keys are all in `allowed`; returns it typed as a record. */
export function checkOptionsObject(value: unknown, name: string, allowed: readonly string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionError(name, `expected an object, got ${describe(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) {
      const near = closestName(key, allowed);
      const hint = near === undefined ? '' : `did you mean \`${near}\`? `;
      throw new InvalidOptionError(`${name}.${key}`, `unknown option; ${hint}the known options are: ${allowed.join(', ')}`);
    }
  }
  return record;
}

export function checkString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new InvalidOptionError(name, `expected a string, got ${describe(value)}`);
  if (value.trim() === '') throw new InvalidOptionError(name, 'must not be empty');
  return value;
}

export function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, `expected true or false, got ${describe(value)}`);
  return value;
}

export function checkInteger(value: unknown, name: string, minimum: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) {
    throw new InvalidOptionError(name, `expected an integer ≥ ${minimum}, got ${describe(value)}`);
  }
  return value;
}

export function checkPositiveNumber(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidOptionError(name, `expected a number > 0, got ${describe(value)}`);
  }
  return value;
}

export function checkOneOf<T extends string>(value: unknown, name: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new InvalidOptionError(name, `expected one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

/** A short description of a value for error messages: its JSON form, or its type when that is too long. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `${value}n`;
  try {
    const json = JSON.stringify(value);
    if (json !== undefined && json.length <= 60) return json;
  } catch {
    // fall through to the type
  }
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}
