/**
 * `deno task build`: dist/sluice, one self-contained executable of the worker
 * (README, Deploy).
 *
 * Builder choice (`--builder auto`, the default):
 *   1. `deno compile`, the primary build. With DENORT_BIN set, deno uses that
 *      local runtime (deno reads the variable itself) and a failure is final.
 *      Without it, deno downloads its runtime (or finds it cached in DENO_DIR).
 *   2. If that download fails (offline machines), `bun build --compile` with
 *      bun 1.4.5 from npm, its tarball checked against a pinned integrity
 *      (BUN_PACKAGES), or BUN_BIN.
 * `--builder deno|bun` forces one. The version and git commit are baked in by
 * a generated entry (dist/.build/<pid>/entry.ts) that imports a stamp module before
 * src/main.ts; src/cli/build_info.ts reads the stamp. The build refuses an entry
 * whose module graph reaches lab/, tests/, bench/ or scripts/, and smoke-tests
 * the result with `--version`.
 *
 * `--target linux-x64|linux-arm64` builds for another machine (e.g. an arm64
 * Graviton VM from an x86_64 laptop, or the reverse): `deno compile --target
 * <triple>` or `bun build --compile --target=bun-linux-<arch>`; a binary of
 * another architecture is not smoke-tested here. `--version V` stamps V instead
 * of package.json's version (the VM test's second build is an upgrade).
 *
 * Usage: deno run -A scripts/build.ts [--builder auto|deno|bun] [--entry src/main.ts]
 *        [--out dist/sluice] [--target linux-x64|linux-arm64] [--version V]
 */
import { parseArgs } from "node:util";
import { BUILD_STAMP_GLOBAL } from "../src/cli/build_info.ts";

const BUN_VERSION = "1.4.5";
/** Same permissions as `deno task start`: the worker needs nothing more. */
const DENO_PERMISSIONS = [
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-sys",
  // As in `deno task start`: a small young generation and a capped old space keep RSS low.
  "--v8-flags=--max-semi-space-size=8,--max-old-space-size=1024",
];
/** `--target` names: the deno compile triple and the bun target of each. */
export const TARGETS: Record<string, { deno: string; bun: string; arch: string }> = {
  "linux-x64": { deno: "x86_64-unknown-linux-gnu", bun: "bun-linux-x64", arch: "x86_64" },
  "linux-arm64": { deno: "aarch64-unknown-linux-gnu", bun: "bun-linux-arm64", arch: "aarch64" },
};

/** A `--target` value (also a deno triple or a bun target) to its TARGETS entry, or undefined. */
export function resolveTarget(name: string): (typeof TARGETS)[string] | undefined {
  return Object.values(TARGETS).find((t) => t.deno === name || t.bun === name) ?? TARGETS[name];
}

/** Code that must never ship in the binary. */
const FORBIDDEN_DIRS = ["lab/", "tests/", "bench/", "scripts/"];

type Builder = "deno compile" | "bun build --compile";

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string[], options: { cwd: string; env?: Record<string, string> }) {
  const [program, ...args] = cmd;
  if (program === undefined) throw new Error("empty command");
  const output = await new Deno.Command(program, {
    args,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.env ? { env: options.env } : {}),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  } satisfies RunResult;
}

async function gitCommit(root: string): Promise<string> {
  try {
    const rev = await run(["git", "rev-parse", "--short=12", "HEAD"], { cwd: root });
    if (rev.code !== 0) return "unknown";
    // Only tracked changes make a build "dirty"; untracked files of other work do not ship.
    const diff = await run(["git", "diff", "--quiet", "HEAD", "--"], { cwd: root });
    return rev.stdout.trim() + (diff.code === 0 ? "" : "+dirty");
  } catch {
    return "unknown"; // no git binary: a tarball build
  }
}

/** Local modules of the entry's graph, as paths relative to root. */
async function localModules(root: string, entry: string): Promise<string[]> {
  const info = await run([Deno.execPath(), "info", "--json", entry], { cwd: root });
  if (info.code !== 0) throw new Error(`deno info ${entry} failed:\n${info.stderr}`);
  const graph = JSON.parse(info.stdout) as { modules?: Array<{ specifier?: string }> };
  const rootUrl = new URL(`file://${root.endsWith("/") ? root : `${root}/`}`).href;
  return (graph.modules ?? [])
    .map((m) => m.specifier ?? "")
    .filter((s) => s.startsWith(rootUrl) && !s.includes("/node_modules/"))
    .map((s) => decodeURIComponent(s.slice(rootUrl.length)));
}

function formatSize(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB (${bytes} bytes)`;
}

/** `--builder` values. */
export type BuilderOption = "auto" | "deno" | "bun";
type Target = (typeof TARGETS)[string];

/** What the command line asks for; entry and out are absolute. */
export interface BuildOptions {
  builder: BuilderOption;
  entry: string;
  out: string;
  target: Target | undefined;
  /** stamped instead of package.json's version when set */
  version: string | undefined;
}

export const USAGE =
  "usage: deno task build [--builder auto|deno|bun] [--entry src/main.ts] [--out dist/sluice]\n" +
  "                       [--target linux-x64|linux-arm64] [--version V]";

/**
 * The command line as options (paths resolved against root), a help request, or an error
 * line for exit 2. Unknown flags throw, as node:util parseArgs does.
 */
export function parseBuildArgs(
  argv: string[],
  root: string,
): { help: true } | { error: string } | { options: BuildOptions } {
  const { values } = parseArgs({
    args: argv,
    options: {
      builder: { type: "string", default: "auto" },
      entry: { type: "string", default: "src/main.ts" },
      out: { type: "string", default: "dist/sluice" },
      target: { type: "string" },
      version: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return { help: true };
  const builder = values.builder;
  if (builder !== "auto" && builder !== "deno" && builder !== "bun") {
    return { error: `build: --builder must be auto, deno or bun, got ${JSON.stringify(builder)}` };
  }
  const target = values.target === undefined ? undefined : resolveTarget(values.target);
  if (values.target !== undefined && target === undefined) {
    return {
      error: `build: --target must be ${Object.keys(TARGETS).join(" or ")}, got ${
        JSON.stringify(values.target)
      }`,
    };
  }
  const absolute = (path: string) => path.startsWith("/") ? path : `${root}/${path}`;
  return {
    options: {
      builder,
      entry: absolute(values.entry),
      out: absolute(values.out),
      target,
      version: values.version,
    },
  };
}

/** The builder tried first: deno compile unless bun is forced. */
export function firstBuilder(builder: BuilderOption): Builder {
  return builder === "bun" ? "bun build --compile" : "deno compile";
}

/**
 * After a failed deno compile: fall back to bun only under `--builder auto`, without
 * DENORT_BIN (a local runtime that fails will not get better), and only when the failure was
 * the runtime download (offline), not our code.
 */
export function afterDenoFailure(
  o: { builder: BuilderOption; denortBin: boolean; runtimeUnavailable: boolean },
): "fail" | "fall back to bun" {
  return o.builder === "auto" && !o.denortBin && o.runtimeUnavailable ? "fall back to bun" : "fail";
}

/** Whether the binary can run here (and so be smoke-tested): no target, or this machine's. */
export function isNative(target: Target | undefined, arch: string, os: string): boolean {
  return target === undefined || (target.arch === arch && os === "linux");
}

/** What one build needs besides the options. */
interface BuildContext {
  root: string;
  options: BuildOptions;
  buildDir: string;
  entryFile: string;
  tmpOut: string;
  stamp: { version: string; commit: string; builtAt: string };
}

async function main(): Promise<number> {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const parsed = parseBuildArgs(Deno.args, root);
  if ("help" in parsed) {
    console.log(USAGE);
    return 0;
  }
  if ("error" in parsed) {
    console.error(parsed.error);
    return 2;
  }
  const { options } = parsed;
  const modules = await checkedModules(root, options.entry);
  if (modules === undefined) return 1;
  const stamp = await stampOf(root, options.version);
  // Per process, so two builds (a test and `deno task build`) never share files.
  const buildDir = `${root}/dist/.build/${Deno.pid}`;
  const entryFile = await writeEntry(buildDir, options.entry);
  const tmpOut = `${options.out}.tmp-${Deno.pid}`;
  await Deno.mkdir(options.out.slice(0, options.out.lastIndexOf("/")), { recursive: true });
  const ctx: BuildContext = { root, options, buildDir, entryFile, tmpOut, stamp };
  const built = await buildAndReplace(ctx);
  if (built === undefined) return 1;

  const size = (await Deno.stat(options.out)).size;
  console.log(`build: builder   ${built.used}`);
  console.log(`build: binary    ${relativeFrom(root, options.out)}, ${formatSize(size)}`);
  console.log(
    `build: modules   ${modules.length} local modules from ${relativeFrom(root, options.entry)}`,
  );
  console.log(`build: --version ${built.version.stdout.trim()}`);
  return 0;
}

/**
 * Installs node_modules and lists the entry's local modules; undefined (after saying why)
 * when the install fails or the graph reaches code that must not ship.
 */
async function checkedModules(root: string, entry: string): Promise<string[] | undefined> {
  // A fresh clone has no node_modules yet; bun resolves packages from there. --frozen: the
  // build ships exactly what deno.lock pins, and fails rather than update the lock.
  const install = await run([Deno.execPath(), "install", "--frozen"], { cwd: root });
  if (install.code !== 0) {
    console.error(`build: deno install failed:\n${install.stderr}`);
    return undefined;
  }
  const modules = await localModules(root, entry);
  const leaked = modules.filter((m) => FORBIDDEN_DIRS.some((dir) => m.startsWith(dir)));
  if (leaked.length > 0) {
    console.error(
      `build: the worker's module graph reaches non-shipping code:\n  ${leaked.join("\n  ")}`,
    );
    return undefined;
  }
  return modules;
}

/** The version (package.json's unless overridden), git commit and build time to bake in. */
async function stampOf(root: string, versionOverride: string | undefined) {
  const packageJson = JSON.parse(await Deno.readTextFile(`${root}/package.json`)) as {
    version: string;
  };
  const version = versionOverride ?? packageJson.version;
  const commit = await gitCommit(root);
  const builtAt = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  return { version, commit, builtAt };
}

/** Writes the generated entry (stamp first, then the real entry); returns its path. */
async function writeEntry(buildDir: string, entry: string): Promise<string> {
  await Deno.mkdir(buildDir, { recursive: true });
  const entryFile = `${buildDir}/entry.ts`;
  // Relative import so the generated files carry no machine-specific path.
  const entryFromBuildDir = relativeFrom(buildDir, entry);
  await Deno.writeTextFile(entryFile, `import "./stamp.ts";\nimport "${entryFromBuildDir}";\n`);
  return entryFile;
}

/**
 * Builds into tmpOut, smoke-tests it and only then renames it over `out`, so a broken build
 * never replaces a good binary. The build directory and any leftover tmpOut are removed.
 */
async function buildAndReplace(
  ctx: BuildContext,
): Promise<{ used: Builder; version: RunResult } | undefined> {
  try {
    const used = await buildBinary(ctx);
    if (used === undefined) return undefined;
    const version = await smokeTest(ctx, used);
    if (version === undefined) return undefined;
    await Deno.rename(ctx.tmpOut, ctx.options.out);
    return { used, version };
  } finally {
    await Deno.remove(ctx.tmpOut).catch(() => {});
    await Deno.remove(ctx.buildDir, { recursive: true }).catch(() => {});
  }
}

/** deno compile, else (per afterDenoFailure) bun; the builder that succeeded, or undefined. */
async function buildBinary(ctx: BuildContext): Promise<Builder | undefined> {
  const builder = ctx.options.builder;
  if (firstBuilder(builder) === "deno compile") {
    const denortBin = Deno.env.get("DENORT_BIN");
    await writeStamp(ctx, "deno compile");
    if (denortBin) console.log(`build: deno compile with DENORT_BIN=${denortBin}`);
    const result = await denoCompile(ctx);
    if (result.code === 0) return "deno compile";
    const next = afterDenoFailure({
      builder,
      denortBin: Boolean(denortBin),
      runtimeUnavailable: runtimeUnavailable(result),
    });
    if (next === "fail") {
      console.error(`build: deno compile failed:\n${result.stderr}`);
      return undefined;
    }
    console.log(`build: deno compile unavailable (${failureReason(result)}); falling back to bun`);
  }
  await writeStamp(ctx, "bun build --compile");
  const result = await bunCompile(ctx);
  if (result.code !== 0) {
    console.error(`build: bun build --compile failed:\n${result.stdout}${result.stderr}`);
    return undefined;
  }
  return "bun build --compile";
}

function writeStamp(ctx: BuildContext, used: Builder): Promise<void> {
  return Deno.writeTextFile(
    `${ctx.buildDir}/stamp.ts`,
    `(globalThis as Record<string, unknown>)[${JSON.stringify(BUILD_STAMP_GLOBAL)}] = ${
      JSON.stringify({ ...ctx.stamp, builder: used })
    };\n`,
  );
}

function denoCompile(ctx: BuildContext): Promise<RunResult> {
  const target = ctx.options.target;
  return run([
    Deno.execPath(),
    "compile",
    "--no-check", // `deno task check` type-checks; the build only packages
    ...DENO_PERMISSIONS,
    "--exclude-unused-npm",
    "--node-modules-dir=none",
    ...(target ? ["--target", target.deno] : []),
    "--output",
    ctx.tmpOut,
    ctx.entryFile,
  ], { cwd: ctx.root });
}

/**
 * bun for the fallback build. Not `npx -y bun@…`, whose download no lock pins: the platform
 * package of bun 1.4.5 (all the `bun` package adds is an install script picking one), fetched
 * with `npm pack` into .cache/bun/ and checked against the sha512 integrity pinned here before
 * anything in it is unpacked or run. `npm view @oven/bun-linux-x64@1.4.5 dist.integrity` gives
 * the value to pin when BUN_VERSION changes.
 */
export const BUN_PACKAGES: Record<string, { name: string; integrity: string }> = {
  "linux-x86_64": {
    name: "@oven/bun-linux-x64",
    integrity:
      "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g==",
  },
  "linux-x86_64-baseline": {
    name: "@oven/bun-linux-x64-baseline",
    integrity:
      "sha512-s8yMwYcFnnrA178gji0gZbkE2WVDej/Ti1x770oPfihxyRxSMNhGhiAQNXV53aDeraZxksdvKV/RAdQBCd0qPA==",
  },
  "linux-aarch64": {
    name: "@oven/bun-linux-aarch64",
    integrity:
      "sha512-4BXmsSKnjOrlGWqZV4x/oWa7AVoR+B6lCXddMzOAXBIm3t50eslg9wb66gmtW1AamEQ1l1CDvmmruysEhqOWMg==",
  },
  "darwin-aarch64": {
    name: "@oven/bun-darwin-aarch64",
    integrity:
      "sha512-4MIFXHmctH2EhAxLXm2/qxNtv17dFtLJylvaOCsrgq6KSqHTs6eW5YSrJjRbJxYUJaR901fsN8JfZOa+CsWpWQ==",
  },
  "darwin-x86_64": {
    name: "@oven/bun-darwin-x64",
    integrity:
      "sha512-qkLPMGHZM9NI6CeHTWwVezzmlo6cC4Ta7yUAjYIWXS366qQcOlcp75t2uZyiuVRBMPS0h9qE0tCcvCHGaFqjJg==",
  },
};

/** This machine's BUN_PACKAGES key: an x86_64 Linux CPU without AVX2 needs the baseline build. */
export function bunPackageKey(os: string, arch: string, avx2: boolean): string {
  const key = `${os}-${arch}`;
  return key === "linux-x86_64" && !avx2 ? `${key}-baseline` : key;
}

/** npm's integrity string of a tarball: `sha512-` and the base64 digest. */
export async function integrityOf(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", bytes));
  return `sha512-${btoa(String.fromCharCode(...digest))}`;
}

async function hasAvx2(): Promise<boolean> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  return /\bavx2\b/.test(cpuinfo);
}

/**
 * The pinned bun unpacked into `workDir`, its tarball from `<root>/.cache/bun/` (fetched there
 * when missing) and verified first; or why there is none (a bad tarball is removed).
 */
export async function verifiedBun(
  root: string,
  workDir: string,
): Promise<{ bun: string } | { error: string }> {
  const key = bunPackageKey(Deno.build.os, Deno.build.arch, await hasAvx2());
  const pkg = BUN_PACKAGES[key];
  if (!pkg) return { error: `no pinned bun for ${key}: set BUN_BIN to a bun ${BUN_VERSION}` };
  const cacheDir = `${root}/.cache/bun`;
  const tgz = `${cacheDir}/${pkg.name.slice(1).replace("/", "-")}-${BUN_VERSION}.tgz`;
  if (!(await Deno.stat(tgz).then(() => true, () => false))) {
    await Deno.mkdir(cacheDir, { recursive: true });
    const spec = `${pkg.name}@${BUN_VERSION}`;
    const pack = await run(["npm", "pack", spec, "--pack-destination", cacheDir], {
      cwd: cacheDir,
    });
    if (pack.code !== 0) return { error: `npm pack ${spec} failed: ${pack.stderr.trim()}` };
  }
  const got = await integrityOf(await Deno.readFile(tgz));
  if (got !== pkg.integrity) {
    await Deno.remove(tgz).catch(() => {});
    return {
      error: `${tgz} is not ${pkg.name}@${BUN_VERSION}: integrity ${got}, pinned ` +
        `${pkg.integrity} (removed; nothing in it was run)`,
    };
  }
  const dir = `${workDir}/bun`;
  await Deno.mkdir(dir, { recursive: true });
  const untar = await run(["tar", "-xzf", tgz, "-C", dir, "package/bin/bun"], { cwd: dir });
  if (untar.code !== 0) return { error: `cannot unpack ${tgz}: ${untar.stderr.trim()}` };
  return { bun: `${dir}/package/bin/bun` };
}

async function bunCompile(ctx: BuildContext): Promise<RunResult> {
  const target = ctx.options.target;
  const own = Deno.env.get("BUN_BIN");
  const pinned = own ? { bun: own } : await verifiedBun(ctx.root, ctx.buildDir);
  if ("error" in pinned) return { code: 1, stdout: "", stderr: pinned.error };
  return await run([
    pinned.bun,
    "build",
    "--compile",
    // Whitespace and syntax only: identifier minification would mangle
    // class names in stack traces and logs for a negligible size gain.
    "--minify-whitespace",
    "--minify-syntax",
    ...(target ? [`--target=${target.bun}`] : []),
    "--outfile",
    ctx.tmpOut,
    ctx.entryFile,
  ], { cwd: ctx.root });
}

/** `tmpOut --version` must print "sluice <version> "; a foreign binary is not run. */
async function smokeTest(ctx: BuildContext, used: Builder): Promise<RunResult | undefined> {
  const target = ctx.options.target;
  // A foreign binary cannot run here: no --version smoke test for it.
  const native = isNative(target, Deno.build.arch, Deno.build.os);
  const version = native
    ? await run([ctx.tmpOut, "--version"], { cwd: ctx.root, env: { LOG_LEVEL: "error" } })
    : { code: 0, stdout: `(not run: built for ${target?.arch})`, stderr: "" };
  if (
    version.code !== 0 || (native && !version.stdout.startsWith(`sluice ${ctx.stamp.version} `))
  ) {
    console.error(
      `build: the ${used} binary fails \`--version\` (exit ${version.code}):\n` +
        `${version.stdout}${version.stderr}`,
    );
    return undefined;
  }
  return version;
}

function relativeFrom(fromDir: string, to: string): string {
  const from = fromDir.split("/").filter(Boolean);
  const target = to.split("/").filter(Boolean);
  let i = 0;
  while (i < from.length && i < target.length && from[i] === target[i]) i++;
  const up = from.slice(i).map(() => "..");
  const rel = [...up, ...target.slice(i)].join("/");
  return up.length === 0 && !rel.startsWith(".") ? `./${rel}` : rel;
}

/** Whether deno compile failed for want of its runtime (offline), not because of our code. */
function runtimeUnavailable(result: RunResult): boolean {
  return /base binary|denort|error sending request|dns error/i.test(stripAnsi(result.stderr));
}

/** The most telling line of a failed deno compile: the first cause under "Caused by", else the error line. */
function failureReason(result: RunResult): string {
  const lines = stripAnsi(result.stderr).split("\n").map((l) => l.trim());
  const cause = lines.find((l) => /^1: /.test(l)) ?? lines.find((l) => l.startsWith("error"));
  return (cause ?? `exit ${result.code}`).replace(/^1: /, "").slice(0, 200);
}

function stripAnsi(text: string): string {
  // deno colours its errors; the fallback line should read plainly.
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

if (import.meta.main) Deno.exit(await main());
