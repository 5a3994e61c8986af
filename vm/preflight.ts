/**
 * Whether this machine can run the VM test: Linux on x86_64 (the image is
 * amd64 and QEMU emulates it), the tools on PATH, root for a cold image build
 * (mmdebstrap's root mode). A one-line reason when it cannot, else undefined.
 */
import { exec } from "./exec.ts";

export const TOOLS = [
  "qemu-system-x86_64",
  "qemu-img",
  "mmdebstrap",
  "mkfs.ext4",
  "ssh",
  "ssh-keygen",
  "socat",
];

export function platformProblem(os: string, arch: string): string | undefined {
  if (os !== "linux" || arch !== "x86_64") {
    return `the VM test runs on Linux x86_64 only (this is ${os} ${arch}): it builds an amd64 Debian ` +
      "image with mmdebstrap and boots it under QEMU. Deploy a real VM instead: " +
      "./deploy.sh --binary dist/sluice HOST (for an arm64 VM build with " +
      "`deno task build --target bun-linux-arm64`).";
  }
  return undefined;
}

export async function preflight(): Promise<string | undefined> {
  const platform = platformProblem(Deno.build.os, Deno.build.arch);
  if (platform) return platform;
  const missing: string[] = [];
  for (const tool of TOOLS) {
    const r = await exec(["sh", "-c", `command -v ${tool} || test -x /usr/sbin/${tool}`], {
      timeoutSeconds: 5,
    });
    if (r.code !== 0) missing.push(tool);
  }
  if (missing.length > 0) {
    return `missing ${missing.join(", ")}: apt-get install qemu-system-x86 qemu-utils mmdebstrap ` +
      "e2fsprogs openssh-client socat";
  }
  return undefined;
}
