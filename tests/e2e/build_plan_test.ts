import assert from "node:assert/strict";
import {
  afterDenoFailure,
  type BuilderOption,
  type BuildOptions,
  firstBuilder,
  isNative,
  parseBuildArgs,
  TARGETS,
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
