/**
 * However the lab ends (an error mid-run, SIGTERM, a second Ctrl-C, an interrupted SIGTERM
 * phase), no worker and no dynalite child it started is left running. Checked against the
 * operating system's process list (/proc), not the lab's own bookkeeping. Linux only.
 */
import assert from "node:assert/strict";
import { runLab } from "../../lab/lab.ts";
import { descendants, parseStat } from "../../lab/process_tree.ts";
import { runSigtermPhase } from "../../lab/sigterm_phase.ts";
import { startCommand } from "../../lab/start_command.ts";
import { createLogSink } from "../../lab/worker_process.ts";
import { liveChildren } from "../../lab/children.ts";

const LINUX = Deno.build.os === "linux";
const REPO = new URL("../../", import.meta.url).pathname;

/** The processes below this one, from /proc. */
function childProcesses(): number[] {
  const parents = new Map<number, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = parseStat(Deno.readTextFileSync(`/proc/${entry.name}/stat`));
      if (stat) parents.set(Number(entry.name), stat.ppid);
    } catch {
      // gone meanwhile
    }
  }
  return descendants(Deno.pid, parents).filter((pid) => pid !== Deno.pid);
}

/** Processes whose environment carries `marker` (the lab passes its environment on). */
function markedProcesses(marker: string): number[] {
  const out: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const environ = Deno.readTextFileSync(`/proc/${entry.name}/environ`);
      if (environ.split("\0").includes(`LAB_TEST_MARKER=${marker}`)) out.push(Number(entry.name));
    } catch {
      // another user's, or gone
    }
  }
  return out;
}

async function waitFor(what: string, check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The lab in its own process, two workers and the table, sending slowly so a run is in progress;
 * `more` flags after its own.
 */
function spawnLab(marker: string, more: string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "lab/main.ts",
      "--workers",
      "2",
      "--table",
      "--messages",
      "600",
      "--rate",
      "30",
      "--timeout",
      "120",
      ...more,
    ],
    cwd: REPO,
    env: { LAB_TEST_MARKER: marker },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]).then(([out, err]) => `${out}\n${err}`);
  return { child, output };
}

/** Slow enrichment answers keep a first Ctrl-C's drain going (an idle worker stops at once). */
const SLOW_DRAIN = ["--slow-every", "3", "--slow-seconds", "30"];

/**
 * Runs `fn` on a lab in its own process once it runs both workers and the table child (4 marked
 * processes with the lab); whatever `fn` leaves marked is SIGKILLed after.
 */
async function withRunningLab(
  fn: (lab: Deno.ChildProcess, output: Promise<string>, marker: string) => Promise<void>,
  more: string[] = [],
): Promise<void> {
  const marker = crypto.randomUUID();
  const { child, output } = spawnLab(marker, more);
  try {
    await waitFor("the lab's workers and table", () => markedProcesses(marker).length >= 4, 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    await fn(child, output, marker);
  } finally {
    for (const pid of markedProcesses(marker)) Deno.kill(pid, "SIGKILL");
  }
}

Deno.test({
  name: "lab processes: an error mid-run ends runLab with no worker or table child left",
  ignore: !LINUX,
  fn: async () => {
    const before = childProcesses();
    let seen: number[] = [];
    const failure = new Error("lab test: an error mid-run");
    await assert.rejects(
      runLab({
        scenario: "io_mild",
        messages: 600,
        rate: 30,
        users: 200,
        seed: 3,
        poisonShare: 0.02,
        duplicateShare: 0.01,
        unknownShare: 0.01,
        hotShare: 0.2,
        workers: 2,
        table: true,
        timeoutSeconds: 90,
        onProgress: (p) => {
          if (p.phase !== "running" || p.accepted < 10) return;
          seen = childProcesses().filter((pid) => !before.includes(pid));
          throw failure;
        },
      }),
      (error) => error === failure,
    );
    assert.ok(seen.length >= 3, `two workers and the table child ran: ${seen}`);
    const left = childProcesses().filter((pid) => seen.includes(pid));
    assert.deepEqual(left, [], "no child of the lab is left");
    assert.deepEqual(liveChildren(), []);
  },
});

Deno.test({
  name: "lab processes: SIGTERM to the lab mid-run: it drains, exits 1, leaves no process",
  ignore: !LINUX,
  fn: () =>
    withRunningLab(async (child, output, marker) => {
      child.kill("SIGTERM");
      const status = await child.status;
      const text = await output;
      assert.equal(status.code, 1, text);
      assert.match(text, /interrupted before the run finished/);
      assert.deepEqual(markedProcesses(marker), [], "no worker or table child left");
    }),
});

Deno.test({
  name: "lab processes: a second Ctrl-C kills every child at once and exits 130",
  ignore: !LINUX,
  fn: () =>
    withRunningLab(async (child, output, marker) => {
      child.kill("SIGINT");
      await new Promise((r) => setTimeout(r, 200));
      const second = Date.now();
      child.kill("SIGINT");
      const status = await child.status;
      const text = await output;
      assert.equal(status.code, 130, text);
      assert.ok(Date.now() - second < 3000, `exited ${Date.now() - second} ms after`);
      assert.match(text, /interrupted again: \d+ child processes killed/);
      // SIGKILLed processes are reaped by init: give it a moment.
      await waitFor("the children's end", () => markedProcesses(marker).length === 0, 3000);
    }, SLOW_DRAIN),
});

Deno.test({
  name: "lab processes: an interrupted SIGTERM phase ends at once and kills its workers",
  ignore: !LINUX,
  fn: async () => {
    const logFile = await Deno.makeTempFile({ prefix: "sluice-phase-" });
    const log = await Deno.open(logFile, { write: true });
    const before = childProcesses();
    const stop = new AbortController();
    try {
      const phase = runSigtermPhase({
        cmd: startCommand(),
        cwd: REPO,
        baseEnv: Deno.env.toObject(),
        log: createLogSink(log),
        messages: 20,
        // The validator holds every submission: the phase cannot finish on its own.
        slowMs: 600_000,
        signal: stop.signal,
      });
      await waitFor(
        "the phase's first worker",
        () => childProcesses().length > before.length,
        30_000,
      );
      await new Promise((r) => setTimeout(r, 1000));
      const aborted = Date.now();
      stop.abort();
      const summary = await phase;
      assert.ok(Date.now() - aborted < 5000, `ended ${Date.now() - aborted} ms after the abort`);
      assert.ok(summary.problems.includes("interrupted"), summary.problems.join("; "));
      assert.deepEqual(childProcesses().filter((pid) => !before.includes(pid)), []);
    } finally {
      log.close();
      await Deno.remove(logFile);
    }
  },
});
