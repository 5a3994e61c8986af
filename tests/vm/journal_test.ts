import assert from "node:assert/strict";
import {
  inFlightAtStop,
  parseTimespan,
  stopSeconds,
  suppressedMessages,
} from "../../vm/journal.ts";

const JOURNAL =
  `1764358755.101 sluice-vm systemd[1]: Started sluice.service - sluice SQS queue worker.
1764358800.250000 sluice-vm systemd[1]: Stopping sluice.service - sluice SQS queue worker...
1764358801.0 sluice-vm sluice[460]: {"level":"info","msg":"draining"}
1764358803.750000 sluice-vm systemd[1]: Stopped sluice.service - sluice SQS queue worker.
1764358804.0 sluice-vm systemd[1]: Starting sluice.service - sluice SQS queue worker...`;

Deno.test("vm journal: stopSeconds: from systemd's Stopping to its Stopped line", () => {
  assert.equal(stopSeconds(JOURNAL), 3.5);
});

Deno.test("vm journal: stopSeconds: the last complete pair; none without a Stopped line", () => {
  const twice = `${JOURNAL}\n1764358900.0 h systemd[1]: Stopping sluice.service - x...\n` +
    `1764358901.0 h systemd[1]: Stopped sluice.service - x.`;
  assert.equal(stopSeconds(twice), 1);
  assert.equal(stopSeconds(JOURNAL.split("\n").slice(0, 3).join("\n")), undefined);
  // The worker's own "stopping" log line is not systemd's.
  assert.equal(
    stopSeconds("1.0 h sluice[1]: Stopping sluice\n2.0 h sluice[1]: Stopped sluice"),
    undefined,
  );
});

Deno.test("vm journal: suppressedMessages sums journald's rate-limit notices", () => {
  assert.equal(suppressedMessages(JOURNAL), 0);
  const text = "systemd-journald[180]: Suppressed 1200 messages from sluice.service\n" +
    "systemd-journald[180]: Suppressed 34 messages from sluice.service";
  assert.equal(suppressedMessages(text), 1234);
});

Deno.test("vm journal: parseTimespan reads systemctl show's spans", () => {
  const rows: Array<[string, number]> = [["50s", 50], ["1min 30s", 90], ["500ms", 0.5], [
    "infinity",
    Infinity,
  ]];
  for (const [text, seconds] of rows) assert.equal(parseTimespan(text), seconds, text);
});

Deno.test("vm journal: inFlightAtStop reads the worker's last stopping line", () => {
  const text =
    `1.0 h sluice[1]: {"level":"info","msg":"stopping: intake ended, draining in-flight work","in_flight":0}\n` +
    `2.0 h sluice[2]: {"level":"info","msg":"stopping: intake ended, draining in-flight work","in_flight":137,"grace_ms":20000}`;
  assert.equal(inFlightAtStop(text), 137);
  assert.equal(inFlightAtStop(JOURNAL), undefined);
});
