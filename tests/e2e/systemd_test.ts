/**
 * systemd/sluice.service and sluice.env.example: `systemd-analyze verify` and
 * `systemd-analyze security` (Debian's `systemd` package), plus the promises
 * of the README's configuration and deploy sections that those tools do not check.
 */
import assert from "node:assert/strict";
import { CONFIG_VARS, loadConfig, worstCaseStopSeconds } from "../../src/app/config.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const UNIT = `${REPO}/systemd/sluice.service`;
const ENV_EXAMPLE = `${REPO}/systemd/sluice.env.example`;
/**
 * systemd-analyze's exposure score runs 0 (locked down) to 10; "OK" ends at 3.9. What is left
 * at 1.0: the host's network (the worker's job), no private root, no MemoryDenyWriteExecute
 * (the JIT), AF_UNIX, and ProtectClock's read access to the RTC.
 */
const MAX_EXPOSURE = 1.0;

async function analyze(args: string[]) {
  let out;
  try {
    out = await new Deno.Command("systemd-analyze", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { SYSTEMD_COLORS: "0", SYSTEMD_PAGER: "", LC_ALL: "C.UTF-8" },
    }).output();
  } catch (error) {
    throw new Error(
      "systemd-analyze is not installed (Debian: apt-get install -y systemd)",
      { cause: error },
    );
  }
  const decoder = new TextDecoder();
  return {
    code: out.code,
    output: (decoder.decode(out.stdout) + decoder.decode(out.stderr)).trim(),
  };
}

/**
 * `verify` checks that ExecStart= exists, so it runs against a scratch root
 * holding the unit at its installed path, a stand-in /usr/local/bin/sluice and
 * the host's own units (it follows After=/Wants= to them).
 */
async function verifyInRoot(unitText: string, dropIn?: string) {
  const root = await Deno.makeTempDir({ prefix: "sluice_systemd_test_" });
  try {
    await Deno.mkdir(`${root}/usr/local/bin`, { recursive: true });
    await Deno.mkdir(`${root}/etc/systemd/system`, { recursive: true });
    await Deno.mkdir(`${root}/usr/lib/systemd/system`, { recursive: true });
    await Deno.copyFile("/bin/true", `${root}/usr/local/bin/sluice`);
    await Deno.chmod(`${root}/usr/local/bin/sluice`, 0o755);
    await Deno.writeTextFile(`${root}/etc/systemd/system/sluice.service`, unitText);
    if (dropIn !== undefined) {
      await Deno.mkdir(`${root}/etc/systemd/system/sluice.service.d`);
      await Deno.writeTextFile(`${root}/etc/systemd/system/sluice.service.d/override.conf`, dropIn);
    }
    for (const dir of ["/usr/lib/systemd/system", "/lib/systemd/system"]) {
      const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
      for (const entry of entries) {
        if (!entry.isFile || !/\.(target|service|socket|slice|mount)$/.test(entry.name)) continue;
        await Deno.copyFile(`${dir}/${entry.name}`, `${root}/usr/lib/systemd/system/${entry.name}`)
          .catch(() => {});
      }
    }
    return await analyze(["verify", "--man=no", `--root=${root}`, "sluice.service"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** `Key=value` lines of the unit, later ones appended (systemd's list semantics). */
function directives(unitText: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const raw of unitText.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("[")) continue;
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    map.set(key, [...(map.get(key) ?? []), line.slice(eq + 1)]);
  }
  return map;
}

Deno.test("systemd: systemd-analyze verify accepts sluice.service and rejects a broken copy", async () => {
  const unit = await Deno.readTextFile(UNIT);
  const good = await verifyInRoot(unit);
  assert.equal(good.code, 0, good.output);
  // verify exits 0 on ignored lines, so any output at all is a finding.
  assert.equal(good.output, "", `systemd-analyze verify complained:\n${good.output}`);

  // The control: the same check does see a mistake.
  const bad = await verifyInRoot(unit.replace("KillSignal=SIGTERM", "KillSignal=SIGTERMINATE"));
  assert.match(bad.output, /KillSignal|signal/i);
});

Deno.test("systemd: the README's drop-in that widens IPAddressAllow passes systemd-analyze verify", async () => {
  const unit = await Deno.readTextFile(UNIT);
  // As `systemctl edit sluice` writes it; the unit's comment gives the same line.
  assert.match(unit, /IPAddressAllow=any/);
  const widened = await verifyInRoot(unit, "[Service]\nIPAddressAllow=any\n");
  assert.equal(widened.output, "", `systemd-analyze verify complained:\n${widened.output}`);
  const broken = await verifyInRoot(unit, "[Service]\nIPAddressAllow=not-an-address\n");
  assert.match(broken.output, /IPAddressAllow|not-an-address/);
});

Deno.test("systemd: systemd-analyze security rates sluice.service OK", async () => {
  const result = await analyze(["security", "--offline=yes", "--no-pager", UNIT]);
  const match = result.output.match(/Overall exposure level for sluice\.service: ([\d.]+) (\w+)/);
  assert.ok(match, `no exposure score in:\n${result.output}`);
  const score = Number(match[1]);
  console.log(`sluice.service exposure: ${score} ${match[2]} (threshold ${MAX_EXPOSURE})`);
  assert.ok(score <= MAX_EXPOSURE, `exposure ${score} > ${MAX_EXPOSURE}:\n${result.output}`);
});

Deno.test("systemd: sluice.service keeps the contract's promises", async () => {
  const unit = directives(await Deno.readTextFile(UNIT));
  const one = (key: string) => unit.get(key)?.at(-1);
  assert.equal(one("ExecStart"), "/usr/local/bin/sluice");
  assert.equal(one("EnvironmentFile"), "/etc/sluice/sluice.env");
  assert.equal(one("DynamicUser"), "yes");
  assert.equal(one("Restart"), "on-failure");
  assert.ok(Number(one("StartLimitBurst")) > 0 && Number(one("StartLimitIntervalSec")) > 0);
  assert.equal(one("KillSignal"), "SIGTERM");
  for (const key of ["NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"]) {
    assert.equal(one(key), "yes", key);
  }
  assert.equal(one("ProtectSystem"), "strict");
  assert.equal(one("RestrictAddressFamilies"), "AF_INET AF_INET6 AF_UNIX");
  assert.match(one("MemoryMax") ?? "", /^\d+[KMG]?$/);
  assert.match(one("LimitNOFILE") ?? "", /^\d+$/);
  // W^X would stop V8's and JavaScriptCore's JIT from working.
  assert.equal(unit.has("MemoryDenyWriteExecute"), false);
  assert.equal(one("PrivateMounts"), "yes");
  // Only loopback, link-local (IMDS, the VPC's DNS) and private (VPC) addresses by default.
  assert.equal(one("IPAddressDeny"), "any");
  assert.deepEqual(
    (unit.get("IPAddressAllow") ?? []).join(" ").split(" "),
    ["localhost", "link-local", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
  );

  // The stop timeout must outlast the drain, or systemd kills in-flight work.
  const grace = CONFIG_VARS.find((v) => v.name === "SHUTDOWN_GRACE_SECONDS")?.default;
  assert.ok(grace !== undefined);
  const stop = Number(one("TimeoutStopSec"));
  assert.ok(stop >= Number(grace) + 10, `TimeoutStopSec=${stop} vs drain ${grace}s`);
  // A config error (exit 2) is not restarted in a loop.
  assert.match(one("RestartPreventExitStatus") ?? "", /\b2\b/);
});

Deno.test("systemd: sluice.env.example documents every variable with its default", async () => {
  const text = await Deno.readTextFile(ENV_EXAMPLE);
  const lines = text.split("\n");
  for (const v of CONFIG_VARS) {
    if (v.default !== undefined) {
      // Commented out, showing the default: uncommenting changes nothing.
      assert.ok(lines.includes(`#${v.name}=${v.default}`), `missing "#${v.name}=${v.default}"`);
    } else {
      assert.ok(
        lines.some((l) => l.startsWith(`#${v.name}=`) || l.startsWith(`${v.name}=`)),
        `missing ${v.name}`,
      );
    }
    if (v.secret) {
      assert.ok(!lines.some((l) => l.startsWith(`${v.name}=`)), `${v.name} set in the example`);
    }
  }
  // Every active line is NAME=value that systemd's EnvironmentFile= reads as is.
  const known = new Set(CONFIG_VARS.map((v) => v.name));
  for (const line of lines) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const m = line.match(/^([A-Z0-9_]+)=(\S*)$/);
    assert.ok(m, `not NAME=value: ${JSON.stringify(line)}`);
    assert.ok(known.has(m[1]!), `unknown variable ${m[1]}`);
  }
});

Deno.test("systemd: worst-case stop (grace + request timeout + flush) is below TimeoutStopSec, and the env example and README agree", async () => {
  const unit = directives(await Deno.readTextFile(UNIT));
  const timeoutStop = Number(unit.get("TimeoutStopSec")?.at(-1));
  const defaults = loadConfig({
    SQS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
    ENRICH_URL: "http://127.0.0.1:1",
    VALIDATOR_URL: "http://127.0.0.1:2",
  });
  const grace = defaults.shutdownGraceSeconds;
  const timeout = defaults.httpTimeoutMs / 1000;
  const worst = worstCaseStopSeconds(defaults);
  assert.equal(worst, grace + timeout + 10);
  assert.ok(worst < timeoutStop, `worst-case stop ${worst} s vs TimeoutStopSec=${timeoutStop}`);

  // Every place that states the arithmetic states the same numbers.
  const sum = `${grace} + ${timeout} + 10 = ${worst} s`;
  const example = await Deno.readTextFile(ENV_EXAMPLE);
  assert.ok(example.includes(sum), `sluice.env.example says "${sum}"`);
  assert.ok(
    example.includes(`TimeoutStopSec (${timeoutStop})`),
    "the example names the unit's value",
  );
  for (const m of example.matchAll(/TimeoutStopSec \((\d+)\)/g)) {
    assert.equal(Number(m[1]), timeoutStop);
  }
  const readme = await Deno.readTextFile(`${REPO}/README.md`);
  assert.ok(readme.includes(sum), `README says "${sum}"`);
  assert.ok(readme.includes(`TimeoutStopSec=${timeoutStop}`), "README names the unit's value");
  const unitText = await Deno.readTextFile(UNIT);
  assert.ok(unitText.includes(`= ${worst} s`), "the unit's comment states the worst case");
});

Deno.test("systemd: sluice.env.example names the unit's TimeoutStopSec", async () => {
  const unit = await Deno.readTextFile(new URL("../../systemd/sluice.service", import.meta.url));
  const example = await Deno.readTextFile(
    new URL("../../systemd/sluice.env.example", import.meta.url),
  );
  const stop = /^TimeoutStopSec=(\d+)/m.exec(unit)?.[1];
  const named = [...example.matchAll(/TimeoutStopSec \((\d+)\)/g)].map((m) => m[1]);
  assert.ok(stop && named.length > 0, "the example mentions TimeoutStopSec (N)");
  for (const n of named) assert.equal(n, stop, "the example and the unit agree");
});
