/**
 * A Map of at most `max` entries, for what is remembered to save work: setting a new key when
 * it is full drops the entry set first (a Map keeps insertion order).
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (this.size >= this.max && !this.has(key)) this.delete(this.keys().next().value!);
    return super.set(key, value);
  }
}
