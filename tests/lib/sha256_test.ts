import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { HmacSha256, sha256, sha256Hex } from "../../src/lib/sha256.ts";

Deno.test("sha256: FIPS 180-4 and RFC 4231 vectors", () => {
  assert.equal(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(
    sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  // RFC 4231 test case 2, and case 6 (a key longer than a block is hashed first).
  assert.equal(
    new HmacSha256("Jefe").hex("what do ya want for nothing?"),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
  assert.equal(
    new HmacSha256(new Uint8Array(131).fill(0xaa)).hex(
      "Test Using Larger Than Block-Size Key - Hash Key First",
    ),
    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
  );
});

Deno.test("sha256: equals node:crypto at every length around the padding edges, UTF-8 included", () => {
  const key = new Uint8Array(32).map((_, i) => i * 7);
  const hmac = new HmacSha256(key);
  for (let n = 0; n <= 300; n++) {
    const text = "aé東😀".repeat(n).slice(0, n);
    const hex = createHash("sha256").update(text).digest("hex");
    assert.equal(sha256Hex(text), hex, `length ${n}`);
    assert.deepEqual(sha256(text), new Uint8Array(createHash("sha256").update(text).digest()));
    assert.equal(hmac.hex(text), createHmac("sha256", key).update(text).digest("hex"));
    assert.deepEqual(
      hmac.digest(text),
      new Uint8Array(createHmac("sha256", key).update(text).digest()),
    );
  }
  const big = "x".repeat(70_000);
  assert.equal(sha256Hex(big), createHash("sha256").update(big).digest("hex"));
});
