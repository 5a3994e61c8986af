import assert from "node:assert/strict";
import { qemuArgs } from "../../vm/qemu.ts";
import { platformProblem } from "../../vm/preflight.ts";

Deno.test("vm qemu: qemuArgs: TCG, restricted user networking, loopback ssh, one socat guestfwd per port", () => {
  const args = qemuArgs({
    kernel: "/c/vmlinuz",
    initrd: "/c/initrd.img",
    overlay: "/r/overlay.qcow2",
    sshPort: 2222,
    forwardPorts: [4001, 4002],
  });
  const at = (flag: string) => args[args.indexOf(flag) + 1];
  assert.equal(at("-accel"), "tcg,thread=multi");
  assert.equal(at("-drive"), "file=/r/overlay.qcow2,if=virtio,format=qcow2");
  assert.equal(
    at("-netdev"),
    "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22," +
      "guestfwd=tcp:10.0.2.100:4001-cmd:socat STDIO TCP:127.0.0.1:4001," +
      "guestfwd=tcp:10.0.2.100:4002-cmd:socat STDIO TCP:127.0.0.1:4002",
  );
  assert.match(at("-append")!, /^root=\/dev\/vda rw console=ttyS0/);
  assert.ok(!args.some((a) => a.includes("kvm")));
});

Deno.test("vm qemu: platformProblem: only Linux x86_64 runs the VM test; others get a way forward", () => {
  assert.equal(platformProblem("linux", "x86_64"), undefined);
  for (const [os, arch] of [["darwin", "aarch64"], ["linux", "aarch64"], ["darwin", "x86_64"]]) {
    assert.match(platformProblem(os!, arch!)!, /Linux x86_64 only.*--target/);
  }
});
