/**
 * What `sluice --version` reports. `deno task build` (scripts/build.ts) bakes
 * the git commit and build time in: it compiles a generated entry that first
 * runs a one-line stamp module setting `globalThis.__SLUICE_BUILD__`, then
 * imports src/main.ts. The stamp works the same for `deno compile` (which has
 * no `--define`) and `bun build --compile`. Run from source there is no stamp:
 * the commit reads "source".
 */
import packageJson from "../../package.json" with { type: "json" };

/** The global the build's stamp module sets; read only here. */
export const BUILD_STAMP_GLOBAL = "__SLUICE_BUILD__";

export interface BuildInfo {
  /** package.json version, e.g. "0.1.0". */
  version: string;
  /** Short git commit the binary was built from, "+dirty" appended when the tree had changes; "source" when not built. */
  commit: string;
  /** ISO time of the build; undefined when not built. */
  builtAt: string | undefined;
  /** "deno compile" or "bun build --compile"; undefined when not built. */
  builder: string | undefined;
}

/** The baked-in build stamp, or the source fallback. */
export function buildInfo(): BuildInfo {
  const stamp = (globalThis as Record<string, unknown>)[BUILD_STAMP_GLOBAL];
  const s = typeof stamp === "object" && stamp !== null ? stamp as Record<string, unknown> : {};
  const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  return {
    version: text(s["version"]) ?? packageJson.version,
    commit: text(s["commit"]) ?? "source",
    builtAt: text(s["builtAt"]),
    builder: text(s["builder"]),
  };
}

/** One line for `--version`, e.g. "sluice 0.1.0 (commit 1a2b3c4d5e6f, built 2025-01-01T00:00:00Z with bun build --compile)". */
export function versionLine(info: BuildInfo = buildInfo()): string {
  const built = info.builtAt ? `, built ${info.builtAt}` : "";
  const by = info.builder ? ` with ${info.builder}` : "";
  return `sluice ${info.version} (commit ${info.commit}${built}${by})`;
}
