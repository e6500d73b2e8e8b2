/**
 * Kafka's default partitioner for keyed records: `toPositive(murmur2(keyBytes)) % partitions`,
 * byte for byte as in the Java client (org.apache.kafka.common.utils.Utils.murmur2), so a key
 * lands on the same partition number in the embedded log and in Kafka.
 */

/** Kafka's 32-bit murmur2 of a byte array (seed 0x9747b28c): of `length` bytes from `offset`. */
export function murmur2(data: Uint8Array, length = data.length, offset = 0): number {
  const m = 0x5bd1e995;
  const r = 24;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = offset + i * 4;
    let k =
      ((data[i4] as number) & 0xff) |
      (((data[i4 + 1] as number) & 0xff) << 8) |
      (((data[i4 + 2] as number) & 0xff) << 16) |
      (((data[i4 + 3] as number) & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = offset + (length & ~3);
  const rest = length % 4;
  if (rest === 3) h ^= ((data[tail + 2] as number) & 0xff) << 16;
  if (rest >= 2) h ^= ((data[tail + 1] as number) & 0xff) << 8;
  if (rest >= 1) {
    h ^= (data[tail] as number) & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition Kafka's default partitioner picks for a key (strings are hashed as UTF-8). */
export function partitionForKey(key: Buffer | string, partitions: number): number {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return partitionForKeyBytes(bytes, partitions);
}

/** {@link partitionForKey} for key bytes (`length` of them from `offset`). */
export function partitionForKeyBytes(key: Uint8Array, partitions: number, length = key.length, offset = 0): number {
  return (murmur2(key, length, offset) & 0x7fffffff) % partitions;
}
