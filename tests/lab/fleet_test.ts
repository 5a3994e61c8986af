/** The fleet parts of the lab and the bench: flags, per-worker shares, the summary, the RESULTS section. */
import assert from "node:assert/strict";
import { formatSummary, parseLabFlags } from "../../lab/main.ts";
import { formatShares, type Slot, startValidatorFront, workerShares } from "../../lab/fleet.ts";
import { labSummary } from "../support/lab_summary.ts";
import {
  fleetPlan,
  NEXT_DOOR_MS,
  parseFleetFlags,
  renderFleet,
  replaceSection,
} from "../../bench/fleet.ts";

Deno.test("lab fleet: lab flags: --workers and --table", () => {
  const f = parseLabFlags(["--workers", "3", "--table", "--chaos"]);
  assert.equal(f.workers, 3);
  assert.equal(f.table, true);
  const d = parseLabFlags([]);
  assert.equal(d.workers, undefined);
  assert.equal(d.table, undefined);
  assert.throws(() => parseLabFlags(["--workers", "0"]), /--workers: got "0", expected an integer/);
});

Deno.test("lab fleet: per-worker shares: acceptances and rate per slot, kills shown", () => {
  const front = (n: number) => ({
    url: "",
    inFlight: () => 0,
    accepted: () => n,
    acceptedAt: new Map(),
    close: () => Promise.resolve(),
  });
  const slots = [
    { index: 0, front: front(100), kills: 1 },
    { index: 1, front: front(300), kills: 0 },
  ] as unknown as Slot[];
  const shares = workerShares(slots, 10);
  assert.deepEqual(shares, [
    { worker: 1, accepted: 100, msgPerSecond: 10, kills: 1 },
    { worker: 2, accepted: 300, msgPerSecond: 30, kills: 0 },
  ]);
  assert.equal(formatShares(shares), "w1 100 (10/s, 1 kill) | w2 300 (30/s)");
  assert.deepEqual(workerShares([{ index: 0, kills: 0 }] as unknown as Slot[], 10), []);
});

Deno.test("lab fleet: validator front: forwards, counts acceptances by message_id and what is on the wire", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const target = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    const doc = await r.json() as { message_id: string };
    if (doc.message_id === "slow") await gate;
    return doc.message_id === "bad"
      ? new Response("no", { status: 422 })
      : Response.json({ status: "accepted" });
  });
  const front = startValidatorFront(`http://127.0.0.1:${target.addr.port}`);
  try {
    const post = (id: string) =>
      fetch(`${front.url}/ingest`, { method: "POST", body: JSON.stringify({ message_id: id }) })
        .then(async (r) => ({ status: r.status, text: await r.text() }));
    assert.equal((await post("a")).status, 200);
    assert.equal((await post("bad")).status, 422);
    const slow = post("slow");
    for (let i = 0; i < 100 && front.inFlight() === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(front.inFlight(), 1);
    release();
    await slow;
    assert.equal(front.inFlight(), 0);
    assert.equal(front.accepted(), 2);
    assert.deepEqual([...front.acceptedAt.keys()], ["a", "slow"]);
  } finally {
    await front.close();
    await target.shutdown();
  }
});

const summary = labSummary;

Deno.test("lab fleet: formatSummary: with the table, duplicates are shown against the submissions on the wire", () => {
  const text = formatSummary(summary({
    table: true,
    duplicateSubmissions: 3,
    onWireAtKills: 7,
    kills: 1,
    workers: [{ worker: 1, accepted: 50, msgPerSecond: 50, kills: 1 }],
    tableRequests: { PutItem: 99 },
  }));
  assert.match(text, /duplicate submissions\s+3 \(allowed up to 7: on the wire at kills\)/);
  const byCause = formatSummary(summary({
    table: false,
    duplicateSubmissions: 9,
    duplicateCauses: { atKill: 4, producerCopies: 3, redeliveries: 2 },
    killedInFlight: 50,
  }));
  assert.match(
    byCause,
    /duplicate submissions\s+9: 4 at a SIGKILL \(sent by the killed worker, sent again after it\), 5 with no kill involved \(3 producer copies accepted twice, 2 redeliveries of accepted messages\) \(allowed up to 50\)/,
  );
  assert.match(text, /per worker \(accepted, rate\)\s+w1 50 \(50\/s, 1 kill\)/);
  assert.match(text, /submissions on the wire at kills\s+7/);
  assert.match(text, /idempotency table\s+yes \(dynalite\): PutItem=99/);
});

Deno.test("lab fleet: bench --fleet: efficiency against one worker, table cost per valid message, section replaced", () => {
  const remote: [number, number] = [250, 350];
  const runs = [
    { workers: 1, table: false, summary: summary({ msgPerSecond: 400, p50Ms: 100 }) },
    { workers: 2, table: false, summary: summary({ msgPerSecond: 720, p50Ms: 110 }) },
    {
      workers: 1,
      table: true,
      summary: summary({
        msgPerSecond: 380,
        p50Ms: 104.5,
        tableRequests: { CreateTable: 1, PutItem: 99, UpdateItem: 98, GetItem: 1 },
      }),
    },
  ].map((r) => ({ ...r, rate: 0, validatorMs: remote }));
  const md = renderFleet(runs, { messages: 100, validatorMs: remote }, "Run X; flags: `--fleet`");
  assert.match(md, /\n\nRun X; flags: `--fleet`\.\n/);
  assert.match(md, /\| 2 \| no \| 720 \| 0\.90 \|/);
  assert.match(md, /\| 1 \| yes \| 380 \| 1\.00 \|/);
  // 64 submissions in flight ÷ 300 ms on average.
  assert.match(md, /validator answers in 250–350 ms/);
  assert.match(md, /÷ 300 ms ≈ 213 msg\/s/);
  // (99 + 98 + 1) / 98 valid messages; CreateTable is setup, not cost.
  assert.match(md, /2\.02 \(PutItem 1\.01, GetItem 0\.01, UpdateItem 1\)/);
  assert.match(md, /p50 100 → 104\.5 ms \(\+4\.5 ms\)/);
  assert.doesNotMatch(md, /next door/, "no saturated runs, no saturated table");
  const doc = "# R\n\n## io_mild\n\nx\n";
  const once = replaceSection(doc, md);
  assert.equal(replaceSection(once, md), once, "replacing is idempotent");
  const middle = replaceSection(
    `${once}\n## later\n\ny\n`,
    "## Fleet: several workers on one queue\n\nnew\n",
  );
  assert.match(
    middle,
    /## io_mild\n\nx\n\n## Fleet: several workers on one queue\n\nnew\n\n## later/,
  );
});

Deno.test("lab fleet: bench --fleet: the saturated runs get their own table, efficiency against their own one worker", () => {
  const remote: [number, number] = [250, 350];
  const run = (workers: number, validatorMs: [number, number], msgPerSecond: number) => ({
    workers,
    table: false,
    rate: 0,
    validatorMs,
    summary: summary({ msgPerSecond }),
  });
  const md = renderFleet(
    [
      run(1, remote, 200),
      run(2, remote, 380),
      run(1, NEXT_DOOR_MS, 1000),
      run(2, NEXT_DOOR_MS, 1100),
    ],
    { messages: 100, validatorMs: remote },
    "Run X",
  );
  const [main, saturated] = md.split("With the validator next door (1–4 ms)");
  assert.match(main!, /\| 2 \| no \| 380 \| 0\.95 \|/);
  assert.doesNotMatch(main!, /\| 1100 \|/);
  assert.match(saturated!, /\| 2 \| no \| 1100 \| 0\.55 \|/);
});

Deno.test("lab fleet: bench --fleet flags: defaults, --validator-ms, the plan", () => {
  const d = parseFleetFlags(["--fleet"]);
  assert.deepEqual(d, {
    messages: 4000,
    counts: [1, 2, 4],
    rate: 100,
    validatorMs: [300, 400],
    saturated: true,
  });
  const o = parseFleetFlags([
    "--fleet",
    "--validator-ms",
    "100,200",
    "--counts",
    "1,2",
    "--no-saturated",
  ]);
  assert.ok(typeof o !== "string");
  assert.deepEqual(o.validatorMs, [100, 200]);
  assert.deepEqual(fleetPlan(o).map((r) => `${r.workers}${r.table ? "t" : ""}@${r.rate}`), [
    "1@0",
    "2@0",
    "1t@0",
    "2t@0",
    "2@100",
    "2t@100",
  ]);
  if (typeof d === "string") throw new Error(d);
  const saturated = fleetPlan(d).filter((r) => r.validatorMs === NEXT_DOOR_MS);
  assert.deepEqual(saturated.map((r) => `${r.workers}${r.table ? "t" : ""}`), [
    "1",
    "2",
    "1t",
    "2t",
  ]);
  for (const bad of ["300,200", "abc", "1,2,3", "-1,5"]) {
    assert.match(
      String(parseFleetFlags(["--validator-ms", bad])),
      new RegExp(`Cannot parse --validator-ms: received "${bad}", expected LO,HI`),
    );
  }
});

Deno.test("lab fleet: spawnDynalite: a child process serving the table, counting requests by action", async () => {
  const { spawnDynalite } = await import("../../lab/dynalite.ts");
  const db = await spawnDynalite("fleet-test");
  try {
    await db.client.putItem(db.table, { id: { S: "a" } });
    assert.deepEqual(await db.client.getItem(db.table, { id: { S: "a" } }), { id: { S: "a" } });
    const counts = await db.requests();
    assert.equal(counts.PutItem, 1);
    assert.equal(counts.GetItem, 1);
  } finally {
    await db.close();
  }
});

Deno.test("lab fleet: spawnDynalite: a client that vanishes mid-request does not end the table", async () => {
  const { spawnDynalite } = await import("../../lab/dynalite.ts");
  const db = await spawnDynalite("vanish-test");
  try {
    for (let i = 0; i < 3; i++) {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: Number(new URL(db.url).port),
      });
      await conn.write(new TextEncoder().encode(
        "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n" +
          'Content-Length: 100\r\n\r\n{"Tab',
      ));
      conn.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await db.client.getItem(db.table, { id: { S: "a" } }), undefined);
  } finally {
    await db.close();
  }
});

/** A front that accepted `ids` at time 1000 and has `inFlight` submissions unanswered. */
function frontWith(ids: string[], inFlight = 0) {
  return {
    url: "",
    inFlight: () => inFlight,
    accepted: () => ids.length,
    acceptedAt: new Map(ids.map((id) => [id, 1000])),
    acceptances: [],
    close: () => Promise.resolve(),
  };
}

Deno.test("lab fleet: onWireAtKill: a table that times out does not throw; unread records count as on the wire", async () => {
  const { onWireAtKill } = await import("../../lab/fleet.ts");
  const { TimeoutError } = await import("../../src/lib/errors.ts");
  let reads = 0;
  const timingOut = {
    getItem: () => {
      reads++;
      return Promise.reject(new TimeoutError("DynamoDB GetItem", 5000));
    },
  };
  const pauses: number[] = [];
  const wire = await onWireAtKill(
    frontWith(["a", "b"], 1),
    { client: timingOut, name: "t", completed: new Set() },
    0,
    { attempts: 3, retryDelayMs: 10, sleep: (ms) => (pauses.push(ms), Promise.resolve()) },
  );
  assert.deepEqual(wire, { onWire: 3, unread: 2 });
  assert.equal(reads, 6, "each record tried three times");
  assert.deepEqual(pauses.sort((x, y) => x - y), [10, 10, 20, 20], "backoff doubles");
});

Deno.test("lab fleet: onWireAtKill: retried reads, COMPLETED remembered, only the killed process's acceptances", async () => {
  const { onWireAtKill } = await import("../../lab/fleet.ts");
  const records: Record<string, string> = { a: "COMPLETED", b: "IN_PROGRESS" };
  let failNext = 1;
  const asked: string[] = [];
  const table = {
    getItem: (_t: string, key: { id: { S: string } } | Record<string, unknown>) => {
      const id = (key as { id: { S: string } }).id.S;
      asked.push(id);
      if (failNext-- > 0) return Promise.reject(new Error("ECONNRESET"));
      const status = records[id];
      return Promise.resolve(status ? { id: { S: id }, status: { S: status } } : undefined);
    },
  };
  const front = frontWith(["a", "b", "c"]);
  front.acceptedAt.set("old", 10);
  const completed = new Set<string>();
  const opts = { concurrency: 1, sleep: () => Promise.resolve() };
  const first = await onWireAtKill(front, { client: table, name: "t", completed }, 500, opts);
  // a: COMPLETED (after one failed try); b: IN_PROGRESS; c: no record; "old" predates the process.
  assert.deepEqual(first, { onWire: 2, unread: 0 });
  assert.deepEqual(asked, ["a", "a", "b", "c"]);
  assert.deepEqual([...completed], ["a"]);
  asked.length = 0;
  await onWireAtKill(front, { client: table, name: "t", completed }, 500, opts);
  assert.deepEqual(asked, ["b", "c"], "a COMPLETED record is not read again");
});
