/** What every VM step gets: the guest, the lab services, the binaries, and the way to deploy. */
import { exec, type ExecResult } from "./exec.ts";
import { type Guest, ssh, sshOptions } from "./guest.ts";
import type { LabServices } from "./lab_services.ts";

export interface StepResult {
  ok: boolean;
  /** the step's figure(s), one line: seconds, counts */
  figure: string;
  /** why it failed, or extra lines worth reading */
  notes?: string[];
}

export interface VmContext {
  repo: string;
  guest: Guest;
  lab: LabServices;
  /** the first build, the upgrade build (another version string), a binary that exits at once */
  binaries: {
    first: string;
    upgrade: string;
    upgradeVersion: string;
    broken: string;
    /** an arm64 ELF header: deploy.sh must refuse it on this x86_64 VM before copying */
    foreign: string;
  };
  /** deploy.sh's /healthz wait for a binary that should come up; TCG start-up takes ~10 s */
  healthTimeout: number;
  /** guest seconds (date +%s) when step 2's drain started: step 7 reads the journal from there */
  drainSince?: number;
  /** guest seconds just after step 2's drain ended */
  drainUntil?: number;
}

/** Runs the real ./deploy.sh against the VM; its whole output is in the result. */
export function deploy(
  ctx: VmContext,
  binary: string,
  healthTimeout = ctx.healthTimeout,
  onLine?: (line: string) => void,
) {
  const opts = sshOptions(ctx.guest);
  const sshOpts: string[] = [];
  for (let i = 0; i < opts.length; i += 2) {
    if (opts[i] === "-o") sshOpts.push("--ssh-option", opts[i + 1]!);
  }
  return exec([
    `${ctx.repo}/deploy.sh`,
    "--binary",
    binary,
    "--port",
    String(ctx.guest.sshPort),
    "--identity",
    ctx.guest.key,
    ...sshOpts,
    "--health-timeout",
    String(healthTimeout),
    "root@127.0.0.1",
  ], { timeoutSeconds: 240, cwd: ctx.repo, ...(onLine ? { onLine } : {}) });
}

/** The last lines of a command's output, for a failure note. */
export function tail(r: ExecResult, n = 12): string[] {
  return `${r.stdout}\n${r.stderr}`.trim().split("\n").filter((l) => !l.startsWith("+ ")).slice(-n);
}

/** /etc/sluice/sluice.env for the lab, with `extra` lines appended. */
export function envFile(ctx: VmContext, extra: Record<string, string> = {}): string {
  const vars = { ...ctx.lab.guestEnv, LOG_LEVEL: "info", ...extra };
  return Object.entries(vars).map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
}

/** Replaces /etc/sluice/sluice.env on the guest (root-only, as deploy.sh installs it). */
export async function writeEnv(ctx: VmContext, text: string): Promise<void> {
  const r = await ssh(ctx.guest, "umask 077; cat >/etc/sluice/sluice.env", 30, text);
  if (r.code !== 0) throw new Error(`writing sluice.env failed: ${r.stderr.trim()}`);
}
