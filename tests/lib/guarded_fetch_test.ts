/**
 * lib/guarded_fetch.ts: the one way sluice sends a request. No redirect is followed, bodies are
 * read within a cap, and no code under src/ calls a fetch of its own.
 */
import assert from "node:assert/strict";
import {
  fetchNoRedirect,
  globalFetch,
  readTextCapped,
  readTextPrefix,
  redirectOf,
} from "../../src/lib/guarded_fetch.ts";
import { HttpError, RedirectError } from "../../src/lib/errors.ts";
import { serveJson } from "../support/lab_env.ts";

const SRC = new URL("../../src/", import.meta.url).pathname;
const WRAPPER = "lib/guarded_fetch.ts";

/** Source without comments, so a comment mentioning fetch( is not a call. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
}

/**
 * Calls of anything named like a fetch (`fetch(`, `doFetch(`, `this.#fetch(`, `fetcher(`)
 * other than the wrapper itself, as "file:line: text".
 */
function bypassingCalls(file: string, text: string): string[] {
  const found: string[] = [];
  const lines = code(text).split("\n");
  lines.forEach((line, i) => {
    for (const match of line.matchAll(/([\w$#.]*fetch\w*)\s*\(/gi)) {
      const callee = match[1]!.split(".").pop()!;
      if (callee === "fetchNoRedirect") continue;
      found.push(`${file}:${i + 1}: ${line.trim()}`);
    }
  });
  return found;
}

async function sourceFiles(dir: string, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${prefix}${entry.name}`;
    if (entry.isDirectory) files.push(...await sourceFiles(`${dir}${entry.name}/`, `${path}/`));
    else if (path.endsWith(".ts")) files.push(path);
  }
  return files.sort();
}

Deno.test("guarded fetch: no code under src/ sends a request except through fetchNoRedirect", async () => {
  const offenders: string[] = [];
  const files = await sourceFiles(SRC);
  assert.ok(files.includes(WRAPPER) && files.length > 50, `src/ scanned: ${files.length} files`);
  for (const file of files) {
    if (file === WRAPPER) continue;
    offenders.push(...bypassingCalls(file, await Deno.readTextFile(`${SRC}${file}`)));
  }
  assert.deepEqual(offenders, [], "send these through lib/guarded_fetch.ts fetchNoRedirect");
});

Deno.test("guarded fetch: the scan finds each way of calling a fetch, not comments or types", () => {
  const text = [
    "const a = await fetch(url);",
    "const b = await doFetch(url, init);",
    "const c = await this.#fetch(url);",
    "const d = await fetcher (url);",
    "const e = await c.fetch(signed.url, {",
    "// fetch(url) in a comment",
    "/* doFetch(url) */ const f: typeof fetch = globalFetch;",
    "const g = await fetchNoRedirect(doFetch, 't', url, init);",
  ].join("\n");
  assert.deepEqual(bypassingCalls("x.ts", text).map((line) => line.split(":")[1]), [
    "1",
    "2",
    "3",
    "4",
    "5",
  ]);
});

/** `/hop` redirects with `status` to `/landed`, which answers 200 and counts its visits. */
function hopping(status: number) {
  let landed = 0;
  const server = serveJson(async (request, url) => {
    await request.text();
    if (url.pathname === "/hop") {
      return new Response("moved", { status, headers: { location: "/landed" } });
    }
    landed++;
    return Response.json({ ok: true });
  });
  return Object.assign(server, { landed: () => landed });
}

for (const status of [301, 302, 303, 307, 308]) {
  Deno.test(`guarded fetch: a ${status} is a RedirectError naming the resolved Location, never followed`, async () => {
    const server = hopping(status);
    try {
      const error = await fetchNoRedirect(globalFetch, "thing", `${server.url}/hop`, {
        method: "POST",
        body: "{}",
      }).then(() => undefined, (e) => e);
      assert.ok(error instanceof RedirectError, `expected RedirectError, got ${error}`);
      assert.equal(error.status, status);
      assert.equal(error.location, `${server.url}/landed`);
      assert.equal(error.target, "thing");
      assert.equal(server.landed(), 0);
    } finally {
      await server.close();
    }
  });
}

const LOCATIONS: Array<[string, string, string]> = [
  ["a relative path, resolved", "/sso/login", "https://api.example/sso/login"],
  ["user:password@ dropped", "https://user:s3cret@evil.example/x", "https://evil.example/x"],
  ["a user alone dropped", "http://admin@evil.example/", "http://evil.example/"],
  ["unparsable, as sent", "http://[broken/x", "http://[broken/x"],
  ["unparsable, without user:password@", "http://user:s3cret@[broken/x", "http://[broken/x"],
  ["absent", "", ""],
];

for (const [name, location, expected] of LOCATIONS) {
  Deno.test(`guarded fetch: redirectOf: the Location shown is ${name}`, () => {
    const headers = new Headers(location ? { location } : {});
    const redirect = redirectOf(
      { status: 302, type: "basic", headers },
      "https://api.example/v1/users/1",
    );
    assert.deepEqual(redirect, { status: 302, location: expected });
  });
}

Deno.test("guarded fetch: the caller's signal replaces init's and redirect is always manual", async () => {
  const seen: RequestInit[] = [];
  const fake: typeof fetch = (_input, init) => {
    seen.push(init ?? {});
    return Promise.resolve(new Response("ok"));
  };
  const own = new AbortController();
  const init: RequestInit = { method: "GET", redirect: "follow", signal: own.signal };
  await (await fetchNoRedirect(fake, "t", "http://x/", init)).text();
  const other = new AbortController();
  await (await fetchNoRedirect(fake, "t", "http://x/", init, other.signal)).text();
  assert.deepEqual(seen.map((s) => [s.redirect, s.signal === own.signal]), [
    ["manual", true],
    ["manual", false],
  ]);
  assert.equal(seen[1]!.signal, other.signal);
  assert.equal(init.redirect, "follow", "the caller's init is not changed");
});

/** A body of `bytes` bytes, sent with a Content-Length, chunked, or gzip-compressed. */
function bodyServer(bytes: number) {
  const data = new Uint8Array(bytes).fill(0x61);
  return serveJson(async (request, url) => {
    await request.text();
    if (url.pathname === "/length") return new Response(data);
    if (url.pathname === "/gzip") {
      const gz = new Blob([data]).stream().pipeThrough(new CompressionStream("gzip"));
      return new Response(await new Response(gz).arrayBuffer(), {
        headers: { "content-encoding": "gzip" },
      });
    }
    // A stream of unknown length: chunked transfer encoding.
    let sent = 0;
    return new Response(
      new ReadableStream({
        pull(controller) {
          if (sent >= bytes) return controller.close();
          const chunk = data.subarray(sent, Math.min(bytes, sent + 65536));
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      }),
    );
  });
}

for (const kind of ["length", "chunked", "gzip"]) {
  Deno.test(`guarded fetch: a ${kind} body over the cap is an HttpError; within it, the whole text`, async () => {
    const server = bodyServer(3 * 1024 * 1024);
    try {
      const big = await globalFetch(`${server.url}/${kind}`);
      const error = await readTextCapped(big, "thing", 1024 * 1024).then(() => undefined, (e) => e);
      assert.ok(error instanceof HttpError, `expected HttpError, got ${error}`);
      assert.equal(error.status, 200);
      assert.equal(error.category, "TRANSIENT");
      assert.match(error.message, /thing answered HTTP 200: answer longer than 1048576 bytes/);
      const fits = await globalFetch(`${server.url}/${kind}`);
      assert.equal((await readTextCapped(fits, "thing", 4 * 1024 * 1024)).length, 3 * 1024 * 1024);
      const prefix = await globalFetch(`${server.url}/${kind}`);
      assert.equal(await readTextPrefix(prefix, 1000), "a".repeat(1000));
    } finally {
      await server.close();
    }
  });
}
