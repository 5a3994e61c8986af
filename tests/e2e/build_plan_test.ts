import assert from "node:assert/strict";
import {
  afterDenoFailure,
  type BuilderOption,
  type BuildOptions,
  BUN_PACKAGES,
  bunPackageKey,
  firstBuilder,
  integrityOf,
  isNative,
  parseBuildArgs,
  TARGETS,
  verifiedBun,
} from "../../scripts/build.ts";

const ROOT = "/repo";

Deno.test("build plan: parseBuildArgs: defaults, flags, paths against root, help and errors", () => {
  const defaults: BuildOptions = {
    builder: "auto",
    entry: "/repo/src/main.ts",
    out: "/repo/dist/sluice",
    target: undefined,
    version: undefined,
  };
  const rows: Array<[string[], ReturnType<typeof parseBuildArgs>]> = [
    [[], { options: defaults }],
    [["--help"], { help: true }],
    [["-h", "--builder", "nope"], { help: true }],
    [["--builder", "bun"], { options: { ...defaults, builder: "bun" } }],
    [["--builder", "deno", "--version", "9.9.9"], {
      options: { ...defaults, builder: "deno", version: "9.9.9" },
    }],
    [["--out", "/tmp/x", "--entry", "other/e.ts"], {
      options: { ...defaults, out: "/tmp/x", entry: "/repo/other/e.ts" },
    }],
    [["--target", "linux-arm64"], { options: { ...defaults, target: TARGETS["linux-arm64"] } }],
    [["--target", "x86_64-unknown-linux-gnu"], {
      options: { ...defaults, target: TARGETS["linux-x64"] },
    }],
    [["--builder", "rust"], { error: 'build: --builder must be auto, deno or bun, got "rust"' }],
    [["--target", "darwin-arm64"], {
      error: 'build: --target must be linux-x64 or linux-arm64, got "darwin-arm64"',
    }],
  ];
  for (const [argv, want] of rows) {
    assert.deepEqual(parseBuildArgs(argv, ROOT), want, argv.join(" "));
  }
  assert.throws(() => parseBuildArgs(["--bogus"], ROOT), /bogus/);
});

Deno.test("build plan: firstBuilder: deno compile unless bun is forced", () => {
  const rows: Array<[BuilderOption, string]> = [
    ["auto", "deno compile"],
    ["deno", "deno compile"],
    ["bun", "bun build --compile"],
  ];
  for (const [builder, want] of rows) assert.equal(firstBuilder(builder), want, builder);
});

Deno.test("build plan: afterDenoFailure: bun only under auto, without DENORT_BIN, when offline", () => {
  const rows: Array<[BuilderOption, boolean, boolean, string]> = [
    // builder, DENORT_BIN set, runtime unavailable → next
    ["auto", false, true, "fall back to bun"],
    ["auto", false, false, "fail"],
    ["auto", true, true, "fail"],
    ["auto", true, false, "fail"],
    ["deno", false, true, "fail"],
    ["deno", false, false, "fail"],
    ["deno", true, true, "fail"],
  ];
  for (const [builder, denortBin, runtimeUnavailable, want] of rows) {
    assert.equal(
      afterDenoFailure({ builder, denortBin, runtimeUnavailable }),
      want,
      `${builder} ${denortBin} ${runtimeUnavailable}`,
    );
  }
});

Deno.test("build plan: isNative: no target, or this machine's arch on Linux", () => {
  const rows: Array<[keyof typeof TARGETS | undefined, string, string, boolean]> = [
    [undefined, "x86_64", "linux", true],
    [undefined, "aarch64", "darwin", true],
    ["linux-x64", "x86_64", "linux", true],
    ["linux-x64", "aarch64", "linux", false],
    ["linux-arm64", "aarch64", "linux", true],
    ["linux-arm64", "aarch64", "darwin", false],
  ];
  for (const [name, arch, os, want] of rows) {
    const target = name === undefined ? undefined : TARGETS[name];
    assert.equal(isNative(target, arch, os), want, `${name} on ${os}/${arch}`);
  }
});

Deno.test("build plan: bunPackageKey: the platform package of this machine, baseline without AVX2", () => {
  const rows: Array<[string, string, boolean, string]> = [
    ["linux", "x86_64", true, "@oven/bun-linux-x64"],
    ["linux", "x86_64", false, "@oven/bun-linux-x64-baseline"],
    ["linux", "aarch64", false, "@oven/bun-linux-aarch64"],
    ["darwin", "aarch64", false, "@oven/bun-darwin-aarch64"],
    ["darwin", "x86_64", true, "@oven/bun-darwin-x64"],
  ];
  for (const [os, arch, avx2, name] of rows) {
    assert.equal(BUN_PACKAGES[bunPackageKey(os, arch, avx2)]?.name, name, `${os}/${arch}`);
  }
  assert.equal(BUN_PACKAGES[bunPackageKey("windows", "x86_64", true)], undefined);
  for (const pkg of Object.values(BUN_PACKAGES)) {
    assert.match(pkg.integrity, /^sha512-[A-Za-z0-9+/]{86}==$/, pkg.name);
  }
});

Deno.test("build plan: integrityOf is npm's sha512 integrity", async () => {
  assert.equal(
    await integrityOf(new TextEncoder().encode("")),
    "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==",
  );
});

Deno.test("build plan: verifiedBun refuses a cached bun tarball that is not the pinned one, and removes it", async () => {
  const root = await Deno.makeTempDir({ prefix: "sluice_bun_pin_" });
  try {
    const key = bunPackageKey(Deno.build.os, Deno.build.arch, true);
    const pkg = BUN_PACKAGES[key] ?? BUN_PACKAGES["linux-x86_64"]!;
    const tgz = `${root}/.cache/bun/${pkg.name.slice(1).replace("/", "-")}-1.4.5.tgz`;
    await Deno.mkdir(`${root}/.cache/bun`, { recursive: true });
    // A tarball that would run a script of its own as "bun".
    const fake = `${root}/fake`;
    await Deno.mkdir(`${fake}/package/bin`, { recursive: true });
    await Deno.writeTextFile(`${fake}/package/bin/bun`, '#!/bin/sh\ntouch "$0.ran"\n');
    const tar = await new Deno.Command("tar", { args: ["-czf", tgz, "-C", fake, "package"] })
      .output();
    assert.equal(tar.code, 0);
    const result = await verifiedBun(root, `${root}/work`);
    assert.ok("error" in result, `a bun was accepted: ${JSON.stringify(result)}`);
    assert.match(
      result.error,
      /is not @oven\/bun-[a-z0-9-]+@1\.4\.5: integrity sha512-.*, pinned sha512-/,
    );
    assert.equal(
      await Deno.stat(tgz).then(() => true, () => false),
      false,
      "the tarball is removed",
    );
    assert.equal(
      await Deno.stat(`${root}/work`).then(() => true, () => false),
      false,
      "nothing unpacked",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("build plan: verifiedBun unpacks the pinned bun 1.4.5 from npm, and it runs", async () => {
  const root = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
  const work = await Deno.makeTempDir({ prefix: "sluice_bun_pin_" });
  try {
    const result = await verifiedBun(root, work);
    assert.ok("bun" in result, JSON.stringify(result));
    const out = await new Deno.Command(result.bun, { args: ["--version"] }).output();
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "1.4.5");
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
