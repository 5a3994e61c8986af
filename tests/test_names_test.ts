/**
 * One subject per test file: every `Deno.test` name in a file starts with the
 * same `subject: ` prefix, so a failing line says where to look; and a name says
 * the behaviour it holds, never the issue or defect it came from.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { REPO } from "./support/command.ts";

/**
 * Files another change is still editing; they are renamed when it lands. The
 * test fails once such a file follows the rule, so the entry cannot linger.
 */
const PENDING = new Set<string>();

const TEST_CALL = /Deno\.test\(\s*(?:\{\s*name:\s*)?(?:"((?:\\.|[^"\\])*)"|`((?:\\.|[^`\\])*)`)?/g;

/** The names of the tests in one source file; undefined where a name is not a literal. */
export function testNames(source: string): Array<string | undefined> {
  return [...source.matchAll(TEST_CALL)].map((m) => m[1] ?? m[2]);
}

/** What breaks the one-subject rule in a file, one line each; empty when it holds. */
export function subjectProblems(file: string, source: string): string[] {
  const names = testNames(source);
  const problems: string[] = [];
  const subjects = new Set<string>();
  for (const name of names) {
    const cut = name?.indexOf(": ") ?? -1;
    if (name === undefined || cut <= 0) {
      problems.push(`${file}: ${JSON.stringify(name ?? "(not a literal)")} has no "subject: "`);
    } else subjects.add(name.slice(0, cut));
    if (name !== undefined && /\b(defect|issue) \d/i.test(name)) {
      problems.push(`${file}: ${JSON.stringify(name)} names an issue, not a behaviour`);
    }
  }
  if (subjects.size > 1) {
    problems.push(`${file}: several subjects: ${[...subjects].map((s) => `"${s}"`).join(", ")}`);
  }
  return problems;
}

async function testFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== "fixtures") out.push(...await testFiles(path));
    else if (entry.name.endsWith("_test.ts")) out.push(path);
  }
  return out;
}

Deno.test("test names: subjectProblems row by row", () => {
  // Spelled in two parts so this file's own scan does not see the rows as tests.
  const t = (rest: string) => `Deno${"."}test(${rest}`;
  const rows: Array<[string, string, number]> = [
    ["one subject", t(`"a: x", f);`) + t("`a: y ${n}`, f);"), 0],
    ["an issue after the subject", t(`"a: x", f);`) + t(`"a: issue 9: y", f);`), 1],
    ["a defect after the subject", t(`"a: x", f);`) + t(`"a: defect 3: y", f);`), 1],
    ["two subjects", t(`"a: x", f);`) + t(`"b: y", f);`), 1],
    ["no prefix", t(`"a: x", f);`) + t(`"plain name", f);`), 1],
    ["an options object", t(`{\n  name: "a: x",\n  fn() {},\n});`), 0],
    ["a name that is not a literal", t("name, f);"), 1],
  ];
  for (const [what, source, count] of rows) {
    assert.equal(subjectProblems("x_test.ts", source).length, count, what);
  }
});

Deno.test("test names: every test file under tests/ has one subject prefix", async () => {
  const offenders: string[] = [];
  const stillPending: string[] = [];
  for (const path of await testFiles(join(REPO, "tests"))) {
    const file = relative(REPO, path);
    const problems = subjectProblems(file, await readFile(path, "utf8"));
    if (PENDING.has(file)) {
      if (problems.length === 0) stillPending.push(file);
    } else offenders.push(...problems);
  }
  assert.deepEqual(offenders, [], `test names without one subject:\n${offenders.join("\n")}`);
  assert.deepEqual(stillPending, [], "these files follow the rule now: remove them from PENDING");
});
