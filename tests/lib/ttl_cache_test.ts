import assert from "node:assert/strict";
import { TtlCache } from "../../src/lib/ttl_cache.ts";
import { FakeClock } from "../support/fake_clock.ts";

const clock = () => new FakeClock({ start: 1000 });

Deno.test("ttl cache: TtlCache returns fresh values and expires them after ttl", () => {
  const c = clock();
  const cache = new TtlCache<string, number>({ ttlMs: 100, clock: c });
  cache.set("a", 1);
  assert.equal(cache.get("a"), 1);
  assert.equal(cache.has("a"), true);
  c.advance(99);
  assert.equal(cache.get("a"), 1);
  c.advance(1);
  assert.equal(cache.get("a"), undefined);
  assert.equal(cache.has("a"), false);
  assert.equal(cache.get("missing"), undefined);
});

Deno.test("ttl cache: TtlCache expiry is lazy: removed on access", () => {
  const c = clock();
  const cache = new TtlCache<string, number>({ ttlMs: 10, clock: c });
  cache.set("a", 1);
  cache.set("b", 2);
  c.advance(10);
  assert.equal(cache.size, 2, "nothing is swept in the background");
  assert.equal(cache.get("a"), undefined);
  assert.equal(cache.size, 1);
  assert.equal(cache.has("b"), false);
  assert.equal(cache.size, 0);
});

Deno.test("ttl cache: TtlCache set accepts a per-entry ttl and overwrites resets it", () => {
  const c = clock();
  const cache = new TtlCache<string, string>({ ttlMs: 100, clock: c });
  cache.set("short", "s", 10);
  cache.set("long", "l");
  c.advance(50);
  assert.equal(cache.get("short"), undefined);
  assert.equal(cache.get("long"), "l");
  cache.set("long", "l2");
  c.advance(80);
  assert.equal(cache.get("long"), "l2");
});

Deno.test("ttl cache: TtlCache evicts the least recently used entry at maxSize", () => {
  const c = clock();
  const cache = new TtlCache<string, number>({ ttlMs: 1000, maxSize: 3, clock: c });
  cache.set("a", 1);
  cache.set("b", 2);
  cache.set("c", 3);
  assert.equal(cache.get("a"), 1); // a is now the most recently used
  cache.set("d", 4); // evicts b
  assert.equal(cache.size, 3);
  assert.equal(cache.has("b"), false);
  assert.deepEqual(["a", "c", "d"].map((k) => cache.get(k)), [1, 3, 4]);
  cache.set("c", 30); // re-set refreshes c; order now a, d, c
  cache.set("e", 5); // evicts a
  assert.equal(cache.has("a"), false);
  assert.equal(cache.get("c"), 30);
  assert.equal(cache.size, 3);
});

Deno.test("ttl cache: TtlCache peek and has do not refresh LRU order", () => {
  const c = clock();
  const cache = new TtlCache<string, number>({ ttlMs: 1000, maxSize: 2, clock: c });
  cache.set("a", 1);
  cache.set("b", 2);
  assert.deepEqual(cache.peek("a"), { value: 1, fresh: true });
  assert.equal(cache.has("a"), true);
  cache.set("c", 3);
  assert.equal(cache.get("a"), undefined);
  assert.equal(cache.get("b"), 2);
});

Deno.test("ttl cache: TtlCache peek serves stale values within staleMs, then drops them", () => {
  const c = clock();
  const cache = new TtlCache<string, number>({ ttlMs: 100, staleMs: 50, clock: c });
  cache.set("a", 1);
  c.advance(120);
  assert.equal(cache.get("a"), undefined, "get serves fresh values only");
  assert.equal(cache.has("a"), false);
  assert.deepEqual(cache.peek("a"), { value: 1, fresh: false }, "still within the stale window");
  c.advance(29);
  assert.deepEqual(cache.peek("a"), { value: 1, fresh: false });
  c.advance(1);
  assert.equal(cache.peek("a"), undefined);
  assert.equal(cache.size, 0);
});

Deno.test("ttl cache: TtlCache with staleMs 0 serves nothing from peek after expiry", () => {
  const c = clock();
  const cache = new TtlCache<string, number>({ ttlMs: 100, clock: c });
  cache.set("a", 1);
  assert.deepEqual(cache.peek("a"), { value: 1, fresh: true });
  c.advance(100);
  assert.equal(cache.peek("a"), undefined);
});

Deno.test("ttl cache: TtlCache delete and clear", () => {
  const cache = new TtlCache<number, string>({ ttlMs: 100, clock: { monotonic: () => 0 } });
  cache.set(1, "x");
  cache.set(2, "y");
  assert.equal(cache.delete(1), true);
  assert.equal(cache.delete(1), false);
  assert.equal(cache.get(1), undefined);
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.get(2), undefined);
});

Deno.test("ttl cache: TtlCache caches falsy values such as 0 and null", () => {
  const cache = new TtlCache<string, number | null>({ ttlMs: 100, clock: { monotonic: () => 0 } });
  cache.set("zero", 0);
  cache.set("null", null);
  assert.equal(cache.get("zero"), 0);
  assert.equal(cache.get("null"), null);
  assert.equal(cache.has("null"), true);
});

Deno.test("ttl cache: TtlCache rejects maxSize below 1", () => {
  assert.throws(
    () => new TtlCache({ ttlMs: 1, maxSize: 0, clock: { monotonic: () => 0 } }),
    RangeError,
  );
});

Deno.test("ttl cache: an entry hit is kept for at least maxSize / 2 insertions after the hit", () => {
  const c = clock();
  for (const maxSize of [2, 3, 4, 7, 10]) {
    const cache = new TtlCache<string, number>({ ttlMs: 1000, maxSize, clock: c });
    for (let i = 0; i < maxSize; i++) cache.set(`k${i}`, i);
    for (let hit = 0; hit < maxSize; hit++) {
      // Hit one entry (the oldest first, the newest last), then insert maxSize / 2 others.
      const key = [...Array(maxSize).keys()].map((i) => `k${i}`).find((k) => cache.has(k))!;
      assert.notEqual(cache.get(key), undefined);
      for (let j = 0; j < Math.floor(maxSize / 2); j++) cache.set(`n${hit}-${j}`, j);
      assert.equal(cache.has(key), true, `maxSize ${maxSize}, ${key} after hit ${hit}`);
      assert.equal(cache.size, maxSize);
    }
  }
});
