import { BoundedMap } from './bounded-map.js';

/**
 * The value last parsed from each key's stored text, kept with that text: a read that finds the
 * same text as last time gets the same value without parsing it again (comparing the text costs
 * less than hashing it as a key). Past `max` keys, the one first parsed goes. Every reader shares
 * a value, so `parse` must return one nobody changes (frozen).
 */
export class LastParsed<T> {
  private readonly last: BoundedMap<string, { raw: string; value: T }>;

  constructor(max: number) {
    this.last = new BoundedMap(max);
  }

  get(key: string, raw: string, parse: (raw: string) => T): T {
    const hit = this.last.get(key);
    if (hit && hit.raw === raw) return hit.value;
    const value = parse(raw);
    this.last.set(key, { raw, value });
    return value;
  }
}
