/**
 * Fault: IDEMPOTENCY_TABLE (or RATE_LIMIT_TABLE) names a table that cannot serve. The worker, started as
 * `deno task start` does, stops at startup with exit 2 and one line naming the table and the
 * cause, before it receives anything: the queue is untouched.
 */
import assert from "node:assert/strict";
import { startDynalite } from "../../lab/dynalite.ts";
import { startCommand } from "../../lab/start_command.ts";
import { sendBodies, startLabEnv } from "../support/lab_env.ts";

const tables: Array<[string, Record<string, string>]> = [
  ["IDEMPOTENCY_TABLE", { IDEMPOTENCY_TABLE: "no-such-table" }],
  ["RATE_LIMIT_TABLE", { RATE_LIMIT: "20/1s", RATE_LIMIT_TABLE: "no-such-table" }],
];

for (const [variable, tableEnv] of tables) {
  Deno.test(`table startup: a missing ${variable} stops startup with exit 2 in under 5 s, naming the table; no message is received`, async () => {
    const lab = await startLabEnv();
    const db = await startDynalite();
    try {
      await sendBodies(lab, [
        JSON.stringify({ message_id: "m", user_id: "u", event_ts: 1, payload: {} }),
      ]);
      const env = lab.env({ enrich: "http://127.0.0.1:9", validator: "http://127.0.0.1:9" }, {
        ...tableEnv,
        AWS_ENDPOINT_URL_DYNAMODB: db.url,
      });
      const [program, ...args] = startCommand();
      const started = Date.now();
      const child = new Deno.Command(program!, {
        args,
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // A worker that does not stop by itself is ended here, so the test fails rather than hangs.
      const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const out = await child.output();
      clearTimeout(kill);
      const elapsed = Date.now() - started;
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 2, stderr);
      assert.ok(elapsed < 5000, `exited after ${elapsed} ms`);
      const lines = stderr.trim().split("\n");
      assert.equal(lines.length, 1, stderr);
      assert.ok(lines[0]!.includes(`${variable} "no-such-table" does not exist`), lines[0]);
      // Never received: still visible, and the first receive now is its first.
      const answer = await lab.admin.call<
        { Messages?: Array<{ Attributes?: Record<string, string> }> }
      >(
        "ReceiveMessage",
        { QueueUrl: lab.queueUrl, MessageSystemAttributeNames: ["ApproximateReceiveCount"] },
      );
      assert.equal(answer.Messages?.[0]?.Attributes?.ApproximateReceiveCount, "1");
    } finally {
      await db.close();
      await lab.close();
    }
  });
}
