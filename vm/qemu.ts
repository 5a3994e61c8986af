/**
 * One VM run: a qcow2 overlay on the cached image (so the image stays clean),
 * QEMU under TCG (a stock kernel does not boot under /dev/kvm on these
 * machines), user networking with restrict=on (nothing leaves the host), ssh
 * on a loopback port, and one guestfwd per lab service. Each guestfwd runs
 * `socat` per guest connection: a `tcp:` chardev guestfwd is opened once at
 * QEMU's start and carries a single connection, which a worker's connection
 * pool outgrows at once.
 */
import type { VmImage } from "./image.ts";
import { mustExec, withTimeout } from "./exec.ts";

/** The address the guest reaches the host's lab services on. */
export const GUEST_HOST_IP = "10.0.2.100";

export interface VmOptions {
  image: VmImage;
  /** per-run directory: the overlay and the serial console log */
  runDir: string;
  sshPort: number;
  /** host loopback ports the guest reaches as GUEST_HOST_IP:port */
  forwardPorts: number[];
}

export interface Vm {
  pid: number;
  sshPort: number;
  consoleLog: string;
  /** resolves when QEMU exits */
  exited: Promise<Deno.CommandStatus>;
  /** SIGTERM, then SIGKILL after `graceSeconds`, by PID; resolves when QEMU is gone */
  kill(graceSeconds?: number): Promise<void>;
}

/** QEMU's arguments, as a pure function of the run's facts. */
export function qemuArgs(o: {
  kernel: string;
  initrd: string;
  overlay: string;
  sshPort: number;
  forwardPorts: number[];
}): string[] {
  const forwards = o.forwardPorts.map((p) =>
    `guestfwd=tcp:${GUEST_HOST_IP}:${p}-cmd:socat STDIO TCP:127.0.0.1:${p}`
  );
  const netdev = [
    "user",
    "id=n0",
    "restrict=on",
    `hostfwd=tcp:127.0.0.1:${o.sshPort}-:22`,
    ...forwards,
  ].join(",");
  return [
    "-accel",
    "tcg,thread=multi",
    "-cpu",
    "max",
    "-m",
    "1024",
    "-smp",
    "2",
    "-kernel",
    o.kernel,
    "-initrd",
    o.initrd,
    "-append",
    "root=/dev/vda rw console=ttyS0 quiet",
    "-drive",
    `file=${o.overlay},if=virtio,format=qcow2`,
    "-netdev",
    netdev,
    "-device",
    "virtio-net-pci,netdev=n0",
    "-nographic",
  ];
}

/** Starts QEMU (under `nice -n 10`: the VM shares the machine) and returns at once. */
export async function startVm(o: VmOptions): Promise<Vm> {
  const overlay = `${o.runDir}/overlay.qcow2`;
  await Deno.remove(overlay).catch(() => {});
  await mustExec("qemu-img", [
    "qemu-img",
    "create",
    "-q",
    "-f",
    "qcow2",
    "-F",
    "raw",
    "-b",
    o.image.disk,
    overlay,
  ]);
  const consoleLog = `${o.runDir}/console.log`;
  const log = await Deno.open(consoleLog, { write: true, create: true, truncate: true });
  const args = qemuArgs({ ...o.image, overlay, sshPort: o.sshPort, forwardPorts: o.forwardPorts });
  // nice execs QEMU, so the child's PID is QEMU's.
  const child = new Deno.Command("nice", {
    args: ["-n", "10", "qemu-system-x86_64", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const copying = Promise.all([
    child.stdout.pipeTo(log.writable, { preventClose: true }),
    child.stderr.pipeTo(
      new WritableStream({ write: (chunk) => log.write(chunk).then(() => {}) }),
    ),
  ]).catch(() => {}).finally(() => log.close());
  const exited = child.status.then(async (s) => (await copying, s));
  let gone = false;
  exited.then(() => (gone = true));
  const kill = async (graceSeconds = 10) => {
    if (gone) return;
    const signal = (sig: Deno.Signal) => {
      try {
        child.kill(sig);
      } catch {
        // already exited
      }
    };
    signal("SIGTERM");
    if (await withTimeout(exited, graceSeconds) === undefined) {
      signal("SIGKILL");
      await exited;
    }
  };
  return { pid: child.pid, sshPort: o.sshPort, consoleLog, exited, kill };
}

/** A loopback port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
