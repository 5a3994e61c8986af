import assert from "node:assert/strict";
import { createLogger, type LoggerOptions } from "../../src/lib/logger.ts";
import { FakeClock } from "../support/fake_clock.ts";

const T = Date.parse("2025-03-04T05:06:07.089Z");

function capture(options: Partial<LoggerOptions> = {}) {
  const lines: string[] = [];
  const log = createLogger({
    clock: new FakeClock({ start: T }),
    write: (l) => lines.push(l),
    ...options,
  });
  return { log, lines };
}

Deno.test("logger: json lines have ts, level, msg first, then fields", () => {
  const { log, lines } = capture();
  log.info("message accepted", { message_id: "m1", receive_count: 2, ok: true });
  assert.deepEqual(lines, [
    '{"ts":"2025-03-04T05:06:07.089Z","level":"info","msg":"message accepted",' +
    '"message_id":"m1","receive_count":2,"ok":true}',
  ]);
});

Deno.test("logger: level filter drops lines below the configured level", () => {
  const { log, lines } = capture({ level: "warn" });
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  assert.deepEqual(lines.map((l) => JSON.parse(l).level), ["warn", "error"]);

  const all = capture({ level: "debug" });
  all.log.debug("d");
  all.log.info("i");
  assert.deepEqual(all.lines.map((l) => JSON.parse(l).msg), ["d", "i"]);

  const byDefault = capture();
  byDefault.log.debug("hidden");
  byDefault.log.info("shown");
  assert.deepEqual(byDefault.lines.map((l) => JSON.parse(l).msg), ["shown"]);
});

Deno.test("logger: Error values render as {name, message}, also nested", () => {
  const { log, lines } = capture();
  const err = new TypeError("bad thing");
  log.error("failed", { err, nested: { inner: new RangeError("too big") } });
  const record = JSON.parse(lines[0]!);
  assert.deepEqual(record.err, { name: "TypeError", message: "bad thing" });
  assert.deepEqual(record.nested, { inner: { name: "RangeError", message: "too big" } });
});

Deno.test("logger: fields cannot override ts, level or msg", () => {
  const { log, lines } = capture();
  log.warn("real", { msg: "fake", level: "error", ts: "never", extra: 1 });
  assert.deepEqual(JSON.parse(lines[0]!), {
    ts: "2025-03-04T05:06:07.089Z",
    level: "warn",
    msg: "real",
    extra: 1,
  });
});

Deno.test("logger: child loggers add fields; call fields win; children nest", () => {
  const { log, lines } = capture();
  const child = log.child({ component: "receiver", queue: "main" });
  child.info("a");
  child.info("b", { queue: "dlq", n: 1 });
  child.child({ worker: 3 }).info("c");
  log.info("d");
  assert.deepEqual(lines.map((l) => JSON.parse(l)), [
    {
      ts: "2025-03-04T05:06:07.089Z",
      level: "info",
      msg: "a",
      component: "receiver",
      queue: "main",
    },
    {
      ts: "2025-03-04T05:06:07.089Z",
      level: "info",
      msg: "b",
      component: "receiver",
      queue: "dlq",
      n: 1,
    },
    {
      ts: "2025-03-04T05:06:07.089Z",
      level: "info",
      msg: "c",
      component: "receiver",
      queue: "main",
      worker: 3,
    },
    { ts: "2025-03-04T05:06:07.089Z", level: "info", msg: "d" },
  ]);
});

Deno.test("logger: a circular field does not throw", () => {
  const { log, lines } = capture();
  const loop: Record<string, unknown> = {};
  loop.self = loop;
  log.info("loop", { loop, big: 1n });
  const record = JSON.parse(lines[0]!);
  assert.equal(record.msg, "loop");
  assert.equal(record.log_error, "fields not serializable");
  log.info("big", { big: 12n });
  assert.equal(JSON.parse(lines[1]!).big, "12");
});

Deno.test("logger: pretty format: HH:MM:SS.mmm LEVEL msg key=value", () => {
  const { log, lines } = capture({ format: "pretty", level: "debug" });
  log.info("started", { port: 9400, host: "127.0.0.1" });
  log.debug("plain");
  log.warn("odd values", { s: "two words", q: 'a"b', e: "", obj: { a: 1 }, err: new Error("x y") });
  assert.deepEqual(lines, [
    "05:06:07.089 INFO started port=9400 host=127.0.0.1",
    "05:06:07.089 DEBUG plain",
    '05:06:07.089 WARN odd values s="two words" q="a\\"b" e="" obj={"a":1} err="Error: x y"',
  ]);
});

Deno.test("logger: hostile ids: LOG_FORMAT=pretty escapes control characters and cuts long ids", () => {
  const { log, lines } = capture({ format: "pretty" });
  log.warn("message", {
    user_id: "\u001b[2J\u001b[H",
    message_id: "m".repeat(300),
    reason: "csi \u009b31m bidi \u202e lone \ud800 del \u007f nl \n end",
    error: new Error("bad \u001b]0;title\u0007"),
  });
  const line = lines[0]!;
  // Nothing a terminal acts on reaches it raw.
  assert.doesNotMatch(
    line,
    // deno-lint-ignore no-control-regex -- the test looks for raw control characters
    /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])/,
  );
  assert.match(line, / user_id="\\u001b\[2J\\u001b\[H"/);
  assert.match(line, / message_id="m{80}…\(300 chars\)" /);
  assert.match(line, /\\u009b31m bidi \\u202e lone \\ud800 del \\u007f nl \\n end/);
  assert.match(line, /error="Error: bad \\u001b\]0;title\\u0007"/);
  log.info("plain", { user_id: "u-1", reason: "two words" });
  assert.match(lines[1]!, / INFO plain user_id=u-1 reason="two words"$/);
});
