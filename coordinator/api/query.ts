import { badRequest } from '../../shared/errors.js';

// Boolean query parameters as Tapis (FastAPI/pydantic) reads them: tapipy sends Python's
// True/False as "True"/"False", curl users write true/1.
const TRUE = new Set(['true', '1', 'yes', 'on', 't', 'y']);
const FALSE = new Set(['false', '0', 'no', 'off', 'f', 'n']);

/** The value of a boolean query parameter, `fallback` when absent; anything else is a 400 naming it. */
export function queryBool(value: string | string[] | undefined, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = (Array.isArray(value) ? value.at(-1)! : value).toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw badRequest(`${name}: must be true or false`);
}
