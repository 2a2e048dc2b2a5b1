/**
 * Redis Cluster's key → hash slot mapping (the cluster specification, "Key distribution model"):
 * CRC16 (XMODEM) of the key's UTF-8 bytes modulo 16384, where a key with a hash tag — the text
 * between its first `{` and the first `}` after it, if not empty — hashes only that text. The
 * broker uses it to know which master a sharded channel lives on, so it can SSUBSCRIBE there.
 */

/** The number of hash slots of every Redis Cluster. */
export const SLOT_COUNT = 16384;

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as the cluster specification's crc16.c.
const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

const encoder = new TextEncoder();

/** The hash slot of `key` (0 … 16383), as `CLUSTER KEYSLOT` computes it. */
export function keySlot(key: string): number {
  const bytes = encoder.encode(key);
  // Cluster spec: "if the key contains a { character, and if there is a } character to the right
  // of {, and if there are one or more characters between the first occurrence of { and the
  // first occurrence of }, then instead of hashing the key, only what is inside is hashed".
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes, open + 1, close) % SLOT_COUNT;
  }
  return crc16(bytes, 0, bytes.length) % SLOT_COUNT;
}

/**
 * The hash tag for the keys and channel of `topic`: `{topic}`, so all of them share one slot. A
 * topic starting with `}` would make an empty tag (`{}…`), which Redis ignores — its keys would
 * then scatter over slots — so such a topic gets a tag of one SOH character, which no topic name
 * holds (control characters are refused), in front of it.
 */
export function topicHashTag(topic: string): string {
  return topic.startsWith('}') ? `{\u0001}${topic}` : `{${topic}}`;
}
