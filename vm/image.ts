/**
 * The VM's disk image, built once and cached under .cache/vm/<key>/, where the
 * key hashes everything that goes into it (suite, packages, the customisation
 * script, the disk size). A cold build: mmdebstrap (minbase + systemd, sshd,
 * a kernel) into a directory, `mkfs.ext4 -d` onto a raw image, the kernel and
 * initrd copied out of /boot. The root ssh key is made for the image and lives
 * next to it. Runs never write to the cached image: each boots a qcow2 overlay.
 */
import { aptOptions, mirrorLines } from "./apt_sources.ts";
import { exec, mustExec } from "./exec.ts";

export const SUITE = "bookworm";
export const PACKAGES = [
  "systemd",
  "systemd-sysv",
  "udev",
  "dbus",
  "openssh-server",
  "curl",
  "ca-certificates",
  "linux-image-amd64",
] as const;
const DISK_SIZE = "2G";

/** Run inside mmdebstrap's customize hook as `sh customize.sh ROOTFS AUTHORIZED_KEY_FILE`. */
const CUSTOMIZE = `set -eu
root="$1"
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$2" "$root/root/.ssh/authorized_keys"
echo sluice-vm >"$root/etc/hostname"
printf '127.0.0.1 localhost\\n127.0.1.1 sluice-vm\\n' >"$root/etc/hosts"
printf '/dev/vda / ext4 rw,relatime 0 1\\n' >"$root/etc/fstab"
install -d "$root/etc/systemd/network"
printf '[Match]\\nName=en*\\n\\n[Network]\\nDHCP=ipv4\\n' >"$root/etc/systemd/network/10-vm.network"
chroot "$root" systemctl enable systemd-networkd.service
# A boot-time scrub of ext4 snapshots that costs ~15 s under emulation and finds nothing here.
chroot "$root" systemctl mask e2scrub_reap.service
`;

export interface VmImage {
  dir: string;
  disk: string;
  kernel: string;
  initrd: string;
  /** root's private key (its public half is in the image) */
  key: string;
  /** true when it was built now */
  built: boolean;
  seconds: number;
}

/** The cache key: a short hash of what the image is made of. */
export async function imageKey(parts: unknown = { SUITE, PACKAGES, CUSTOMIZE, DISK_SIZE }) {
  const bytes = new TextEncoder().encode(JSON.stringify(parts));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The cached image, built first when missing. `log` gets one line per build stage. */
export async function ensureImage(cacheRoot: string, log: (line: string) => void) {
  const started = performance.now();
  const dir = `${cacheRoot}/vm/${await imageKey()}`;
  const paths = (d: string) => ({
    disk: `${d}/disk.img`,
    kernel: `${d}/vmlinuz`,
    initrd: `${d}/initrd.img`,
    key: `${d}/id_ed25519`,
  });
  const seconds = () => (performance.now() - started) / 1000;
  if (await exists(`${dir}/complete`)) {
    return { dir, ...paths(dir), built: false, seconds: seconds() } satisfies VmImage;
  }
  const work = `${dir}.tmp-${Deno.pid}`;
  await Deno.remove(work, { recursive: true }).catch(() => {});
  await Deno.mkdir(work, { recursive: true });
  try {
    await buildInto(work, paths(work), log);
    await Deno.writeTextFile(`${work}/complete`, new Date().toISOString() + "\n");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(work, dir);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return { dir, ...paths(dir), built: true, seconds: seconds() } satisfies VmImage;
}

async function buildInto(
  work: string,
  p: { disk: string; kernel: string; initrd: string; key: string },
  log: (line: string) => void,
) {
  await mustExec("ssh-keygen", [
    "ssh-keygen",
    "-q",
    "-t",
    "ed25519",
    "-N",
    "",
    "-C",
    "vm-test",
    "-f",
    p.key,
  ]);
  await Deno.writeTextFile(`${work}/customize.sh`, CUSTOMIZE);
  const rootfs = `${work}/rootfs`;
  const mirrors = mirrorLines(await aptSourceFiles(), SUITE);
  if (mirrors.length === 0) mirrors.push(`deb http://deb.debian.org/debian ${SUITE} main`);
  const dump = await exec(["apt-config", "dump"], { timeoutSeconds: 10 });
  const opts = aptOptions(dump.stdout).map((o) => `--aptopt=${o}`);
  log(`mmdebstrap ${SUITE} from ${[...new Set(mirrors.map((m) => m.split(" ")[1]))].join(", ")}`);
  await mustExec("mmdebstrap", [
    "nice",
    "-n",
    "10",
    "mmdebstrap",
    "--quiet",
    "--variant=minbase",
    `--include=${PACKAGES.join(",")}`,
    ...opts,
    `--customize-hook=sh ${work}/customize.sh "$1" ${p.key}.pub`,
    SUITE,
    rootfs,
    ...mirrors,
  ], { timeoutSeconds: 600 });
  const boot = [...Deno.readDirSync(`${rootfs}/boot`)].map((e) => e.name);
  const vmlinuz = boot.find((n) => n.startsWith("vmlinuz-"));
  const initrd = boot.find((n) => n.startsWith("initrd.img-"));
  if (!vmlinuz || !initrd) {
    throw new Error(`no kernel or initrd in the rootfs's /boot: ${boot.join(" ")}`);
  }
  await Deno.copyFile(`${rootfs}/boot/${vmlinuz}`, p.kernel);
  await Deno.copyFile(`${rootfs}/boot/${initrd}`, p.initrd);
  log(`mkfs.ext4 -d rootfs (${DISK_SIZE}), kernel ${vmlinuz}`);
  await mustExec("truncate", ["truncate", "-s", DISK_SIZE, p.disk]);
  await mustExec("mkfs.ext4", ["mkfs.ext4", "-q", "-F", "-L", "root", "-d", rootfs, p.disk], {
    timeoutSeconds: 300,
  });
  await Deno.remove(rootfs, { recursive: true });
}

async function aptSourceFiles(): Promise<string[]> {
  const files = ["/etc/apt/sources.list"];
  try {
    for (const e of Deno.readDirSync("/etc/apt/sources.list.d")) {
      if (/\.(list|sources)$/.test(e.name)) files.push(`/etc/apt/sources.list.d/${e.name}`);
    }
  } catch {
    // no directory
  }
  const texts = await Promise.all(files.map((f) => Deno.readTextFile(f).catch(() => "")));
  return texts.filter((t) => t !== "");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}
