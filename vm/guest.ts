/**
 * Talking to the booted guest as root over ssh (the image's key, loopback
 * port): one command per call, each with a deadline.
 */
import { exec, type ExecResult, waitFor } from "./exec.ts";

export interface Guest {
  sshPort: number;
  key: string;
}

/** ssh options for a throwaway VM: its host key changes with every image, so it is not recorded. */
export function sshOptions(g: Guest): string[] {
  return [
    "-i",
    g.key,
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=5",
    // The guest's CPU is emulated: aes-ctr with umac is its cheapest choice (~2x aes-gcm here).
    "-o",
    "Ciphers=aes128-ctr",
    "-o",
    "MACs=umac-64-etm@openssh.com",
  ];
}

/** Runs a shell command on the guest; never throws for a non-zero exit. */
export function ssh(g: Guest, command: string, timeoutSeconds = 30, stdin?: string) {
  return exec(["ssh", "-p", String(g.sshPort), ...sshOptions(g), "root@127.0.0.1", command], {
    timeoutSeconds,
    ...(stdin !== undefined ? { stdin } : {}),
  });
}

/** Runs a shell command on the guest and returns its stdout, throwing on a non-zero exit. */
export async function sshOk(g: Guest, command: string, timeoutSeconds = 30): Promise<string> {
  const r: ExecResult = await ssh(g, command, timeoutSeconds);
  if (r.code !== 0) {
    throw new Error(
      `guest: \`${command}\` ${r.timedOut ? "timed out" : `exited ${r.code}`}: ${
        (r.stderr || r.stdout).trim().slice(-600)
      }`,
    );
  }
  return r.stdout;
}

/** Waits until ssh answers; returns the guest's boot id, or throws after `timeoutSeconds`. */
export async function waitForSsh(g: Guest, timeoutSeconds: number, notBootId?: string) {
  const id = await waitFor(
    async () => {
      const r = await ssh(g, "cat /proc/sys/kernel/random/boot_id", 10);
      const bootId = r.stdout.trim();
      return r.code === 0 && bootId !== "" && bootId !== notBootId ? bootId : undefined;
    },
    timeoutSeconds,
    2000,
  );
  if (id === undefined) {
    throw new Error(`the guest's ssh did not answer within ${timeoutSeconds} s`);
  }
  return id;
}

/** HTTP status of /healthz from inside the guest ("000" when nothing answers). */
export async function guestHealthz(g: Guest): Promise<string> {
  const r = await ssh(
    g,
    "curl -s -o /dev/null -m 3 -w '%{http_code}' http://127.0.0.1:9400/healthz",
    15,
  );
  return r.stdout.trim() || "000";
}

/** `systemctl show` properties of sluice.service as a map. */
export async function unitProps(g: Guest, names: string[]): Promise<Record<string, string>> {
  const out = await sshOk(g, `systemctl show sluice.service -p ${names.join(",")}`);
  return Object.fromEntries(
    out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}
