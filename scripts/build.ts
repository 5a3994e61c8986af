/**
 * `deno task build`: dist/sluice, one self-contained executable of the worker
 * (contract section 8).
 *
 * Builder choice (`--builder auto`, the default):
 *   1. `deno compile`, the primary build. With DENORT_BIN set, deno uses that
 *      local runtime (deno reads the variable itself) and a failure is final.
 *      Without it, deno downloads its runtime (or finds it cached in DENO_DIR).
 *   2. If that download fails (offline machines), `bun build --compile` with
 *      bun from npm (`npx -y bun@1.4.5`, or BUN_BIN).
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
  "--v8-flags=--max-semi-space-size=16,--max-old-space-size=1024",
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

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      builder: { type: "string", default: "auto" },
      entry: { type: "string", default: "src/main.ts" },
      out: { type: "string", default: "dist/sluice" },
      target: { type: "string" },
      version: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno task build [--builder auto|deno|bun] [--entry src/main.ts] [--out dist/sluice]\n" +
        "                       [--target linux-x64|linux-arm64] [--version V]",
    );
    return 0;
  }
  const builder = values.builder;
  if (builder !== "auto" && builder !== "deno" && builder !== "bun") {
    console.error(`build: --builder must be auto, deno or bun, got ${JSON.stringify(builder)}`);
    return 2;
  }
  const target = values.target === undefined ? undefined : resolveTarget(values.target);
  if (values.target !== undefined && target === undefined) {
    console.error(
      `build: --target must be ${Object.keys(TARGETS).join(" or ")}, got ${
        JSON.stringify(values.target)
      }`,
    );
    return 2;
  }
  // A foreign binary cannot run here: no --version smoke test for it.
  const native = target === undefined ||
    (target.arch === Deno.build.arch && Deno.build.os === "linux");
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const entry = values.entry.startsWith("/") ? values.entry : `${root}/${values.entry}`;
  const out = values.out.startsWith("/") ? values.out : `${root}/${values.out}`;

  // A fresh clone has no node_modules yet; bun resolves packages from there. --frozen: the
  // build ships exactly what deno.lock pins, and fails rather than update the lock.
  const install = await run([Deno.execPath(), "install", "--frozen"], { cwd: root });
  if (install.code !== 0) {
    console.error(`build: deno install failed:\n${install.stderr}`);
    return 1;
  }

  const modules = await localModules(root, entry);
  const leaked = modules.filter((m) => FORBIDDEN_DIRS.some((dir) => m.startsWith(dir)));
  if (leaked.length > 0) {
    console.error(
      `build: the worker's module graph reaches non-shipping code:\n  ${leaked.join("\n  ")}`,
    );
    return 1;
  }

  const packageJson = JSON.parse(await Deno.readTextFile(`${root}/package.json`)) as {
    version: string;
  };
  if (values.version !== undefined) packageJson.version = values.version;
  const commit = await gitCommit(root);
  const builtAt = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

  // Per process, so two builds (a test and `deno task build`) never share files.
  const buildDir = `${root}/dist/.build/${Deno.pid}`;
  await Deno.mkdir(buildDir, { recursive: true });
  const entryFile = `${buildDir}/entry.ts`;
  // Relative import so the generated files carry no machine-specific path.
  const entryFromBuildDir = relativeFrom(buildDir, entry);
  await Deno.writeTextFile(entryFile, `import "./stamp.ts";\nimport "${entryFromBuildDir}";\n`);

  const tmpOut = `${out}.tmp-${Deno.pid}`;
  await Deno.mkdir(out.slice(0, out.lastIndexOf("/")), { recursive: true });

  const writeStamp = (used: Builder) =>
    Deno.writeTextFile(
      `${buildDir}/stamp.ts`,
      `(globalThis as Record<string, unknown>)[${JSON.stringify(BUILD_STAMP_GLOBAL)}] = ${
        JSON.stringify({ version: packageJson.version, commit, builtAt, builder: used })
      };\n`,
    );

  const denortBin = Deno.env.get("DENORT_BIN");
  let used: Builder | undefined;
  let version: RunResult;
  try {
    if (builder === "deno" || builder === "auto") {
      await writeStamp("deno compile");
      if (denortBin) console.log(`build: deno compile with DENORT_BIN=${denortBin}`);
      const result = await run([
        Deno.execPath(),
        "compile",
        "--no-check", // `deno task check` type-checks; the build only packages
        ...DENO_PERMISSIONS,
        "--exclude-unused-npm",
        "--node-modules-dir=none",
        ...(target ? ["--target", target.deno] : []),
        "--output",
        tmpOut,
        entryFile,
      ], { cwd: root });
      if (result.code === 0) {
        used = "deno compile";
      } else if (builder === "deno" || denortBin || !runtimeUnavailable(result)) {
        console.error(`build: deno compile failed:\n${result.stderr}`);
        return 1;
      } else {
        console.log(
          `build: deno compile unavailable (${failureReason(result)}); falling back to bun`,
        );
      }
    }
    if (used === undefined) {
      await writeStamp("bun build --compile");
      const bun = Deno.env.get("BUN_BIN");
      const bunCmd = bun ? [bun] : ["npx", "-y", `bun@${BUN_VERSION}`];
      const result = await run([
        ...bunCmd,
        "build",
        "--compile",
        // Whitespace and syntax only: identifier minification would mangle
        // class names in stack traces and logs for a negligible size gain.
        "--minify-whitespace",
        "--minify-syntax",
        ...(target ? [`--target=${target.bun}`] : []),
        "--outfile",
        tmpOut,
        entryFile,
      ], { cwd: root });
      if (result.code !== 0) {
        console.error(`build: bun build --compile failed:\n${result.stdout}${result.stderr}`);
        return 1;
      }
      used = "bun build --compile";
    }
    // Smoke-test before the rename, so a broken build never replaces a good binary.
    version = native
      ? await run([tmpOut, "--version"], { cwd: root, env: { LOG_LEVEL: "error" } })
      : { code: 0, stdout: `(not run: built for ${target?.arch})`, stderr: "" };
    if (
      version.code !== 0 ||
      (native && !version.stdout.startsWith(`sluice ${packageJson.version} `))
    ) {
      console.error(
        `build: the ${used} binary fails \`--version\` (exit ${version.code}):\n` +
          `${version.stdout}${version.stderr}`,
      );
      return 1;
    }
    await Deno.rename(tmpOut, out);
  } finally {
    await Deno.remove(tmpOut).catch(() => {});
    await Deno.remove(buildDir, { recursive: true }).catch(() => {});
  }

  const size = (await Deno.stat(out)).size;
  console.log(`build: builder   ${used}`);
  console.log(`build: binary    ${relativeFrom(root, out)}, ${formatSize(size)}`);
  console.log(`build: modules   ${modules.length} local modules from ${relativeFrom(root, entry)}`);
  console.log(`build: --version ${version.stdout.trim()}`);
  return 0;
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
