import assert from "node:assert/strict";
import { resolveTarget } from "../../scripts/build.ts";

Deno.test("build target: resolveTarget: short names, deno triples and bun targets name the same builds", () => {
  const arm = { deno: "aarch64-unknown-linux-gnu", bun: "bun-linux-arm64", arch: "aarch64" };
  const x64 = { deno: "x86_64-unknown-linux-gnu", bun: "bun-linux-x64", arch: "x86_64" };
  const rows: Array<[string, typeof arm | undefined]> = [
    ["linux-arm64", arm],
    ["aarch64-unknown-linux-gnu", arm],
    ["bun-linux-arm64", arm],
    ["linux-x64", x64],
    ["bun-linux-x64", x64],
    ["darwin-arm64", undefined],
    ["", undefined],
  ];
  for (const [name, want] of rows) assert.deepEqual(resolveTarget(name), want, name);
});
