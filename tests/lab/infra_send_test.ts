/**
 * The lab as a student uses it by hand: `--infra-only` prints ready-to-paste exports (with
 * AWS_DEFAULT_REGION, HTTP_PORT 9400, no LOG_LEVEL of its own) and curl lines; `lab send` adds
 * messages; a hand-sent well-formed message is accepted; a worker started from the exports
 * drains it all.
 */
import assert from "node:assert/strict";
import { buildDataset } from "../../lab/dataset.ts";
import { createSqsAdmin } from "../../lab/sqs_admin.ts";
import { keptEnv, REPO, run } from "../support/command.ts";
import { waitFor } from "../support/lab_env.ts";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("lab send: lab --infra-only, lab send and a hand-sent message, drained by a worker from the exports", async () => {
  const lab = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lab/main.ts", "--infra-only", "--messages", "10"],
    cwd: REPO,
    env: { ...keptEnv(), HOME: Deno.env.get("HOME") ?? "/tmp", NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of lab.stdout) out += decoder.decode(chunk, { stream: true });
  })();
  const stderr = lab.stderr.pipeTo(new WritableStream());
  let worker: Deno.ChildProcess | undefined;
  try {
    await waitFor(() => out.includes("curl"), "the lab's export lines", 60_000);
    const exports = Object.fromEntries(
      [...out.matchAll(/^export ([A-Z_0-9]+)=(.*)$/gm)].map((
        m,
      ) => [m[1]!, m[2]!.replace(/^'|'$/g, "")]),
    );
    assert.equal(exports.AWS_DEFAULT_REGION, "us-east-1");
    assert.equal(exports.HTTP_PORT, "9400");
    assert.equal(exports.LOG_LEVEL, undefined, "the user's LOG_LEVEL is kept");
    assert.match(out, /curl -s localhost:9400\/healthz/);
    assert.match(out, /localhost:9400\/metrics/);

    const send = await run([
      Deno.execPath(),
      "run",
      "-A",
      "lab/main.ts",
      "send",
      "--count",
      "5",
      "--poison",
      "2",
    ], {
      env: exports,
      clearEnv: true,
    });
    assert.equal(send.code, 0, send.stderr);
    assert.match(send.stdout, /sent 5 message\(s\) and 2 poison/);

    const admin = createSqsAdmin({ endpoint: exports.AWS_ENDPOINT_URL_SQS! });
    const knownUser = buildDataset({ users: 2000, seed: 1 }).knownIds[3]!;
    await admin.call("SendMessage", {
      QueueUrl: exports.SQS_QUEUE_URL,
      MessageBody: JSON.stringify({
        message_id: "by-hand-1",
        user_id: knownUser,
        event_ts: 1,
        payload: { a: 1 },
      }),
    });

    worker = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/main.ts"],
      cwd: REPO,
      env: {
        ...keptEnv(),
        ...exports,
        HTTP_PORT: String(freePort()),
        LOG_LEVEL: "error",
        SQS_RECEIVE_WAIT_SECONDS: "1",
      },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const dlqUrl = exports.SQS_QUEUE_URL!.replace(/sluice-lab$/, "sluice-lab-dlq");
    await waitFor(
      async () => {
        const [main, dlq] = await Promise.all([
          admin.depth(exports.SQS_QUEUE_URL!),
          admin.depth(dlqUrl),
        ]);
        return main.visible + main.inFlight === 0 && dlq.visible >= 2;
      },
      "the worker to drain the lab queue",
      90_000,
    );
    worker.kill("SIGTERM");
    await worker.status;
    worker = undefined;
    lab.kill("SIGINT");
    await lab.status;
    await reading;
    assert.doesNotMatch(out, /unknown_message_id|not valid messages/);
    const accepted = Number(/accepted\s+(\d+) \//.exec(out)?.[1]);
    const valid = Number(/messages \(valid \/ poison\)\s+\d+ \((\d+) \//.exec(out)?.[1]);
    assert.equal(accepted, valid + 5 + 1, out);
  } finally {
    if (worker) {
      worker.kill("SIGKILL");
      await worker.status;
    }
    try {
      lab.kill("SIGKILL");
    } catch {
      // already gone
    }
    await lab.status;
    await reading.catch(() => undefined);
    await stderr.catch(() => undefined);
  }
});
