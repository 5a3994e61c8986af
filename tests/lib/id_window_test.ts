import assert from "node:assert/strict";
import { BYTES_PER_ENTRY, hash64, IdWindow, slotsFor } from "../../src/lib/id_window.ts";
import { FakeClock } from "../support/fake_clock.ts";

Deno.test("IdWindow: remembers ids for the TTL, then forgets them", () => {
  const clock = new FakeClock({ start: 0 });
  const w = new IdWindow({ ttlMs: 10_000, clock });
  w.add("a");
  clock.set(9_800);
  assert.equal(w.has("a"), true);
  assert.equal(w.has("b"), false);
  clock.set(10_100);
  assert.equal(w.has("a"), false);
  w.add("b"); // expires "a" from the ring
  assert.equal(w.size, 1);
});

Deno.test("IdWindow: TTL 0 remembers nothing", () => {
  const w = new IdWindow({ ttlMs: 0, clock: new FakeClock() });
  w.add("a");
  assert.equal(w.has("a"), false);
});

Deno.test("IdWindow: matches a reference set through growth, expiry and deletions", () => {
  const clock = new FakeClock({ start: 0 });
  const ttl = 500_000;
  const w = new IdWindow({ ttlMs: ttl, initialSlots: 16, clock });
  const added = new Map<string, number>();
  let seed = 7;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 20_000; i++) {
    const now = clock.advance(100 * Math.floor(rand() * 3)); // whole ticks: the window is exact
    const id = `m-${Math.floor(rand() * 30_000)}`;
    const expect = (added.get(id) ?? -Infinity) > now - ttl;
    assert.equal(w.has(id), expect, `step ${i} ${id}`);
    if (!expect) {
      w.add(id);
      added.set(id, now);
    }
  }
});

Deno.test("IdWindow: past its memory budget it drops the oldest and reports the shorter window", () => {
  const clock = new FakeClock({ start: 0 });
  const w = new IdWindow({ ttlMs: 3_600_000, maxBytes: 64 * 1024, clock });
  assert.equal(w.maxEntries, 3072);
  assert.ok(w.bytes <= 64 * 1024);
  for (let i = 0; i < 5000; i++) {
    clock.advance(10); // 100 ids a second
    w.add(`id-${i}`);
  }
  assert.equal(w.size, 3072);
  assert.equal(w.has("id-0"), false, "dropped early");
  assert.equal(w.has("id-4999"), true);
  // 3,072 ids at 100/s: about 30 s held instead of an hour.
  assert.ok(Math.abs(w.windowMs() - 30_720) <= 200, `${w.windowMs()} ms`);
});

Deno.test("IdWindow: the default budget's size, bytes per entry, and no false match among 500,000 ids", () => {
  const slots = slotsFor(28 * 2 ** 20);
  assert.equal(slots, 2 ** 21);
  assert.ok(BYTES_PER_ENTRY < 17.5);
  const seen = new Set<string>();
  for (let i = 0; i < 500_000; i++) {
    const [hi, lo] = hash64(`msg-${i}`);
    const key = `${hi}:${lo}`;
    assert.ok(!seen.has(key), `collision at ${i}`);
    seen.add(key);
  }
});
