/**
 * SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104), synchronous, for SigV4. Ours because under
 * Deno the alternatives cost more: WebCrypto is asynchronous, and importing node:crypto loads
 * Deno's Node compatibility layer, which made a worker ~5 % slower per message and ~6 MB larger
 * (bench/RESULTS.md). Checked against node:crypto and FIPS vectors in
 * tests/lib/sha256_test.ts.
 */

const K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

const INITIAL = new Int32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);

const encoder = new TextEncoder();
// Scratch space reused by every call (JavaScript runs one call at a time): the message
// schedule, the hash state and the padded last block or two.
const W = new Int32Array(64);
const H = new Int32Array(8);
const TAIL = new Uint8Array(128);
const TAIL_VIEW = new DataView(TAIL.buffer);

/** Hashes the 64-byte blocks of `data[0..end)` into H. */
function compress(data: Uint8Array, end: number): void {
  const w = W, k = K, h = H;
  for (let at = 0; at < end; at += 64) {
    for (let i = 0, j = at; i < 16; i++, j += 4) {
      w[i] = (data[j]! << 24) | (data[j + 1]! << 16) | (data[j + 2]! << 8) | data[j + 3]!;
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15]!, y = w[i - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
    }
    let a = h[0]!, b = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!, f = h[5]!, g = h[6]!, hh = h[7]!;
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + s1 + ((e & f) ^ (~e & g)) + k[i]! + w[i]!) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = (h[0]! + a) | 0;
    h[1] = (h[1]! + b) | 0;
    h[2] = (h[2]! + c) | 0;
    h[3] = (h[3]! + d) | 0;
    h[4] = (h[4]! + e) | 0;
    h[5] = (h[5]! + f) | 0;
    h[6] = (h[6]! + g) | 0;
    h[7] = (h[7]! + hh) | 0;
  }
}

/** The hash of `prefix` (whole 64-byte blocks, or none) followed by `data`, left in H. */
function digest(prefix: Uint8Array | undefined, data: Uint8Array): void {
  H.set(INITIAL);
  const before = prefix === undefined ? 0 : prefix.length;
  if (prefix !== undefined) compress(prefix, before);
  const length = data.length;
  const whole = length & ~63;
  compress(data, whole);
  // The rest, 0x80, zeros and the length in bits (big-endian, 64 bits) fill one or two blocks.
  const rest = length - whole;
  const padded = rest < 56 ? 64 : 128;
  TAIL.fill(0);
  TAIL.set(data.subarray(whole));
  TAIL[rest] = 0x80;
  const bits = (before + length) * 8;
  TAIL_VIEW.setUint32(padded - 8, Math.floor(bits / 0x100000000));
  TAIL_VIEW.setUint32(padded - 4, bits >>> 0);
  compress(TAIL, padded);
}

function bytesOf(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? encoder.encode(data) : data;
}

function stateBytes(): Uint8Array {
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) view.setInt32(i * 4, H[i]!);
  return out;
}

/** "00" to "ff": a table lookup per byte is cheaper than toString(16) and padStart per word. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

function stateHex(): string {
  let hex = "";
  for (let i = 0; i < 8; i++) {
    const v = H[i]!;
    hex += HEX[v >>> 24]! + HEX[(v >>> 16) & 0xff]! + HEX[(v >>> 8) & 0xff]! + HEX[v & 0xff]!;
  }
  return hex;
}

/** SHA-256 of a string's UTF-8 bytes (or of bytes), as bytes. */
export function sha256(data: string | Uint8Array): Uint8Array {
  digest(undefined, bytesOf(data));
  return stateBytes();
}

/** SHA-256 of a string's UTF-8 bytes (or of bytes), as lowercase hex. */
export function sha256Hex(data: string | Uint8Array): string {
  digest(undefined, bytesOf(data));
  return stateHex();
}

/**
 * HMAC-SHA256 under one key. The key's padded blocks are made once: SigV4 signs every request
 * of a day with the same derived key.
 */
export class HmacSha256 {
  readonly #inner = new Uint8Array(64).fill(0x36);
  readonly #outer = new Uint8Array(64).fill(0x5c);

  constructor(key: string | Uint8Array) {
    let k = bytesOf(key);
    if (k.length > 64) k = sha256(k);
    for (let i = 0; i < k.length; i++) {
      this.#inner[i]! ^= k[i]!;
      this.#outer[i]! ^= k[i]!;
    }
  }

  /** The MAC of `data` (a string's UTF-8 bytes, or bytes) as bytes. */
  digest(data: string | Uint8Array): Uint8Array {
    this.#mac(data);
    return stateBytes();
  }

  /** The MAC of `data` as lowercase hex. */
  hex(data: string | Uint8Array): string {
    this.#mac(data);
    return stateHex();
  }

  #mac(data: string | Uint8Array): void {
    digest(this.#inner, bytesOf(data));
    digest(this.#outer, stateBytes());
  }
}
