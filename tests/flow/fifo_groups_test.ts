/** FifoGroups alone: one message of a group at a time, in order; groups side by side. */
import assert from "node:assert/strict";
import { FifoGroups, type GroupEnd } from "../../src/flow/fifo_groups.ts";
import { FakeClock } from "../support/fake_clock.ts";

function groups(ends: Record<string, GroupEnd> = {}) {
  const events: string[] = [];
  const gates = new Map<string, () => void>();
  const active: number[] = [];
  const it = new FifoGroups<string>({
    work: async (item) => {
      events.push(`start ${item}`);
      await new Promise<void>((resolve) => gates.set(item, resolve));
      events.push(`end ${item}`);
      return ends[item] ?? "done";
    },
    handBack: (item) => (events.push(`back ${item}`), Promise.resolve()),
  }, { clock: new FakeClock(), onActive: (n) => active.push(n) });
  const finish = async (item: string) => {
    for (let i = 0; i < 20 && !gates.has(item); i++) await Promise.resolve();
    gates.get(item)!();
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };
  return { it, events, finish, active };
}

Deno.test("fifo groups: a group's messages one at a time, in order; another group alongside", async () => {
  const g = groups();
  g.it.add("a", "a1");
  g.it.add("a", "a2");
  g.it.add("b", "b1");
  await g.finish("b1");
  assert.deepEqual(g.events, ["start a1", "start b1", "end b1"], "a2 waits for a1; b does not");
  await g.finish("a1");
  await g.finish("a2");
  assert.deepEqual(g.events.slice(3), ["end a1", "start a2", "end a2"]);
  assert.equal(g.it.active, 0);
  assert.deepEqual(g.active, [1, 2, 1, 0]);
});

Deno.test("fifo groups: a message that went back sends the later ones of its group back, unworked", async () => {
  const g = groups({ a1: "went_back" });
  for (const item of ["a1", "a2", "a3"]) g.it.add("a", item);
  g.it.add("b", "b1");
  await g.finish("a1");
  assert.deepEqual(g.events.filter((e) => / a\d$/.test(e)), [
    "start a1",
    "end a1",
    "back a2",
    "back a3",
  ]);
  await g.finish("b1");
  assert.ok(g.events.includes("end b1"), "the other group goes on");
  assert.equal(g.it.active, 0);
});

Deno.test("fifo groups: a message arriving while its group works waits its turn", async () => {
  const g = groups();
  g.it.add("a", "a1");
  await Promise.resolve();
  g.it.add("a", "a2");
  await g.finish("a1");
  assert.deepEqual(g.events, ["start a1", "end a1", "start a2"]);
  await g.finish("a2");
});
