/**
 * A `fetch` for plain-http downstreams over kept-alive HTTP/1.1 connections, and the runtime's
 * own fetch for everything else. Why: sluice sends about 1.2 requests per message, and under
 * Deno each `fetch` cost ~72 µs of CPU against ~28 µs here, the reading included
 * (bench/http_cost.ts, docs/performance.md): the largest single cost of a message. Deno's fetch stays for https
 * (its TLS trust store), for a proxy (the runtime reads HTTP_PROXY; the runtime shim does not
 * choose this client when one is set), a body that is not a string or bytes, a Request, and any
 * redirect mode but "manual" (guarded_fetch.ts sends every request so).
 *
 * What it speaks: one request at a time per connection, a head written with the body in one
 * write; answers framed by Content-Length, chunked, or the connection's close; 1xx answers
 * skipped. An answer up to `bufferBytes` (Content-Length) is read before the Response is
 * returned; any other body streams from the connection, so guarded_fetch.ts's caps hold. A
 * connection is reused only when its answer was read whole and nothing followed it. No
 * Accept-Encoding is sent, so no answer needs decoding; one that is encoded anyway is passed on
 * with its Content-Encoding header (guarded_fetch.ts streams such a body under its cap).
 */
import { onAbort } from "./on_abort.ts";
import type { ByteConn } from "./http1_server.ts";
import { Answer, asResponse } from "./http1_answer.ts";
import { type AnswerHead, decodeFields, parseAnswerHead } from "./http1_answer_head.ts";

export interface Http1ClientOptions {
  /** Opens a TCP connection (the runtime shim's, Deno.connect). */
  connect(hostname: string, port: number): Promise<ByteConn>;
  /** For what this client does not speak: the runtime's fetch. */
  fallback: typeof fetch;
  /** Monotonic ms, for the idle age of pooled connections. */
  monotonic(): number;
  /**
   * A pooled connection idle longer is closed instead of reused. Default 4000: common servers
   * close idle connections after 5 s, and a request written into one that is closing is lost.
   */
  idleMs?: number;
  /** Idle connections kept per origin; more are closed. Default 128. */
  maxIdle?: number;
  /** Answers with a Content-Length up to this are read before returning. Default 1 MiB. */
  bufferBytes?: number;
}

export interface Http1Client {
  fetch: typeof fetch;
  /** Closes every idle connection (the in-use ones close when their answers are read). */
  close(): void;
}

const encoder = new TextEncoder();
/** One runtime call per head; a JS loop over the bytes allocated more than it saved. */
const latin1 = new TextDecoder("latin1");
const MAX_HEAD_BYTES = 64 * 1024;
/** A header name or value that would end the line it is on, or the head. */
const UNSAFE = /[\r\n\0]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers this client writes itself. */
const OWN = new Set(["host", "content-length", "transfer-encoding", "connection"]);

/** Proxy variables the runtime's fetch honours: the first one set, by name. Pure. */
export function proxyVariable(env: Record<string, string | undefined>): string | undefined {
  const names = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];
  return names.find((name) => (env[name] ?? "") !== "");
}

/** One pooled connection: the socket and what was read from it but not yet consumed. */
class Wire {
  buffer = new Uint8Array(16 * 1024);
  start = 0;
  end = 0;
  idleSince = 0;
  /** Whether any byte of an answer arrived since the last request was written. */
  heard = false;
  /**
   * Closes the connection: the abort listener of each request on it. One per connection, and
   * added to and removed from a request's own signal directly: lib/on_abort.ts pays off for a
   * signal many share, and a request's timeout signal is its own.
   */
  readonly abort = () => this.close();
  constructor(readonly conn: ByteConn) {}

  #output = new Uint8Array(8 * 1024);
  /** Views of #output before and after HEAD_ROOM, made once per buffer. */
  #headRoom = this.#output.subarray(0, HEAD_ROOM);
  #bodyRoom = this.#output.subarray(HEAD_ROOM);

  /**
   * The request's head and body as one write, in the connection's own buffer (it carries one
   * request at a time): the body encoded first, after room for the head, whose Content-Length
   * it then knows, and moved up behind it. Undefined, for `apart` to send, when the body is
   * over 64 KiB (a rare large request does not stay in memory) or the head is too long for its
   * room or not ASCII.
   */
  encode(request: PlainRequest): Uint8Array | undefined {
    const body = request.body;
    const most = HEAD_ROOM + (typeof body === "string" ? body.length * 3 : body?.length ?? 0);
    if (most > 64 * 1024) return undefined;
    if (this.#output.length < most) {
      this.#output = new Uint8Array(Math.min(64 * 1024, Math.max(most, this.#output.length * 2)));
      this.#headRoom = this.#output.subarray(0, HEAD_ROOM);
      this.#bodyRoom = this.#output.subarray(HEAD_ROOM);
    }
    let size = 0;
    if (typeof body === "string") size = encoder.encodeInto(body, this.#bodyRoom).written;
    else if (body) (this.#output.set(body, HEAD_ROOM), size = body.length);
    const head = headOf(request, size);
    if (head.length > HEAD_ROOM) return undefined;
    const { read, written } = encoder.encodeInto(head, this.#headRoom);
    if (read < head.length) return undefined;
    this.#output.copyWithin(written, HEAD_ROOM, HEAD_ROOM + size);
    return this.#output.subarray(0, written + size);
  }

  /** Where to read next: after what is buffered, the buffer compacted or grown up to `limit`. */
  room(limit: number): Uint8Array {
    if (this.start === this.end) {
      this.start = this.end = 0;
      return this.buffer; // the common case: the last answer was read whole
    }
    if (this.start > 0 && this.end === this.buffer.length) {
      this.buffer.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (this.end === this.buffer.length) {
      if (this.buffer.length >= limit) throw new TypeError("answer head too large");
      const grown = new Uint8Array(Math.min(limit, this.buffer.length * 2));
      grown.set(this.buffer.subarray(this.start, this.end));
      this.end -= this.start;
      this.start = 0;
      this.buffer = grown;
    }
    return this.buffer.subarray(this.end);
  }

  /** Counts `n` bytes read into room(); false at the end of the stream. */
  filled(n: number | null): boolean {
    if (n === null) return false;
    this.end += n;
    this.heard ||= n > 0;
    return true;
  }

  /** Reads more into the buffer; false at the end of the stream. */
  async fill(limit: number): Promise<boolean> {
    return this.filled(await this.conn.read(this.room(limit)));
  }

  /** Index of the next CRLF (`blank`: CRLF CRLF) in what is buffered, or -1. */
  find(blank: boolean): number {
    const b = this.buffer;
    for (let i = this.start; i + (blank ? 3 : 1) < this.end; i++) {
      if (b[i] === 13 && b[i + 1] === 10 && (!blank || (b[i + 2] === 13 && b[i + 3] === 10))) {
        return i;
      }
    }
    return -1;
  }

  /** The next CRLF-ended line (latin1), read until it is in. */
  async line(): Promise<string> {
    let at = this.find(false);
    while (at < 0) {
      if (!(await this.fill(MAX_HEAD_BYTES))) throw closedEarly();
      at = this.find(false);
    }
    const text = latin1.decode(this.buffer.subarray(this.start, at));
    this.start = at + 2;
    return text;
  }

  /** Up to `max` bytes: what is buffered, else one read's worth; null at the end. */
  async some(max: number): Promise<Uint8Array | null> {
    if (this.start === this.end && !(await this.fill(this.buffer.length))) return null;
    const n = Math.min(max, this.end - this.start);
    const out = this.buffer.slice(this.start, this.start + n);
    this.start += n;
    return out;
  }

  /** `n` bytes if they are all buffered, else undefined. */
  take(n: number): Uint8Array<ArrayBuffer> | undefined {
    if (this.end - this.start < n) return undefined;
    this.start += n;
    return this.buffer.slice(this.start - n, this.start);
  }

  /** Exactly `n` bytes, more than are buffered (`take` serves the rest), read to the end. */
  async exactly(n: number): Promise<Uint8Array<ArrayBuffer>> {
    const out = new Uint8Array(n);
    let have = this.end - this.start;
    out.set(this.buffer.subarray(this.start, this.start + have));
    this.start += have;
    while (have < n) {
      const read = await this.conn.read(out.subarray(have));
      if (read === null) throw closedEarly();
      have += read;
    }
    return out;
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/**
 * What a pooled connection the server had closed while it sat idle gives a request written
 * into it: the end of the stream, a reset, a broken pipe. With no byte of an answer heard the
 * server never took the request, so it is sent once more on a new connection.
 */
function closedIdle(error: unknown): boolean {
  if (error instanceof TypeError) return error.message === CLOSED_EARLY;
  const name = (error as { name?: unknown } | null)?.name;
  return name === "ConnectionReset" || name === "BrokenPipe" || name === "ConnectionAborted";
}

const CLOSED_EARLY = "connection closed before the answer";

function closedEarly(): TypeError {
  return new TypeError(CLOSED_EARLY);
}

/** A client for `options`; `fetch` may be called concurrently (one connection per request). */
export function http1Client(options: Http1ClientOptions): Http1Client {
  const idle = new Map<string, Wire[]>();
  const idleMs = options.idleMs ?? 4000;
  const maxIdle = options.maxIdle ?? 128;
  const bufferBytes = options.bufferBytes ?? 1024 * 1024;
  const pool: Pool = {
    take(origin) {
      const wires = idle.get(origin);
      const now = options.monotonic();
      for (let wire = wires?.pop(); wire; wire = wires?.pop()) {
        if (now - wire.idleSince <= idleMs) return wire;
        wire.close();
      }
      return undefined;
    },
    give(origin, wire) {
      let wires = idle.get(origin);
      if (!wires) idle.set(origin, wires = []);
      if (wires.length >= maxIdle) return wire.close();
      const now = options.monotonic();
      // The oldest first: one that sat past idleMs will not be taken, so it is closed now.
      while (wires.length > 0 && now - wires[0]!.idleSince > idleMs) wires.shift()!.close();
      wire.idleSince = now;
      wires.push(wire);
    },
    connect: (hostname, port) => options.connect(hostname, port).then((conn) => new Wire(conn)),
    bufferBytes,
  };
  const fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    let request: PlainRequest | undefined;
    try {
      request = plainRequest(input, init);
    } catch (error) {
      return Promise.reject(error); // a bad header, as fetch rejects it
    }
    if (!request) return options.fallback(input, init);
    return send(pool, request, init?.signal ?? undefined);
  };
  return {
    fetch: fetch as typeof globalThis.fetch,
    close() {
      for (const wires of idle.values()) for (const wire of wires) wire.close();
      idle.clear();
    },
  };
}

interface Pool {
  take(origin: string): Wire | undefined;
  give(origin: string, wire: Wire): void;
  connect(hostname: string, port: number): Promise<Wire>;
  bufferBytes: number;
}

/** What a request this client speaks needs, or undefined when it is one for the fallback. */
interface PlainRequest {
  origin: string;
  hostname: string;
  port: number;
  method: string;
  url: string;
  /** The request line and headers, up to the blank line. */
  head: string;
  body: string | Uint8Array | undefined;
  /** Whether the head needs a Content-Length even without a body (POST, PUT). */
  sized: boolean;
}

/** What a URL string gives a request; kept per string, as a worker's URLs repeat. */
interface Target {
  origin: string;
  hostname: string;
  port: number;
  /** `host: …` and the path, as the request line and Host header need them. */
  path: string;
  host: string;
}

const TARGETS = new Map<string, Target | null>();
/** Enough for a worker's downstreams; a flood of distinct URLs just starts the map again. */
const MAX_TARGETS = 512;

/** The parts of an http: URL without credentials, or null for one this client leaves alone. */
function targetOf(input: string | URL): Target | null {
  const key = typeof input === "string" ? input : input.href;
  let target = TARGETS.get(key);
  if (target !== undefined) return target;
  const url = typeof input === "string" ? URL.parse(input) : input;
  target = null;
  if (url && url.protocol === "http:" && !url.username && !url.password) {
    const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port === "" ? 80 : Number(url.port);
    const path = `${url.pathname}${url.search}`;
    target = { origin: `${hostname}:${port}`, hostname, port, path, host: url.host };
  }
  if (TARGETS.size >= MAX_TARGETS) TARGETS.clear();
  TARGETS.set(key, target);
  return target;
}

/** The request as this client writes it; undefined for anything it leaves to the fallback. */
function plainRequest(input: RequestInfo | URL, init?: RequestInit): PlainRequest | undefined {
  if (typeof input !== "string" && !(input instanceof URL)) return undefined;
  if (init?.redirect !== "manual") return undefined;
  const raw = init.body;
  if (
    raw !== undefined && raw !== null && typeof raw !== "string" && !(raw instanceof Uint8Array)
  ) {
    return undefined;
  }
  const target = targetOf(input);
  if (!target) return undefined;
  const method = init.method === undefined ? "GET" : init.method.toUpperCase();
  const head = `${method} ${target.path} HTTP/1.1\r\nhost: ${target.host}\r\n${
    headerLines(init.headers)
  }`;
  const { origin, hostname, port } = target;
  const url = typeof input === "string" ? input : input.href;
  const sized = raw !== undefined && raw !== null || method === "POST" || method === "PUT";
  return { origin, hostname, port, method, url, head, body: raw ?? undefined, sized };
}

/** Header names already found to be tokens (a worker sends the same few). */
const NAMES = new Set<string>();

/** One header line; a name or value that would break the head is a TypeError, as in fetch. */
function headerLine(name: string, value: string): string {
  if (!NAMES.has(name)) {
    if (!TOKEN.test(name)) throw new TypeError(`Invalid header name: ${JSON.stringify(name)}`);
    if (NAMES.size < 256) NAMES.add(name);
  }
  if (UNSAFE.test(value)) throw new TypeError(`Invalid header value for ${name}`);
  return OWN.has(name.toLowerCase()) ? "" : `${name}: ${value}\r\n`;
}

/** The caller's headers as lines. */
function headerLines(headers: HeadersInit | undefined): string {
  if (headers === undefined) return "";
  let lines = "";
  if (headers instanceof Headers || Array.isArray(headers)) {
    for (const [name, value] of headers as Iterable<[string, string]>) {
      lines += headerLine(name, value);
    }
    return lines;
  }
  const record = headers as Record<string, string>;
  for (const name in record) lines += headerLine(name, String(record[name]));
  return lines;
}

/**
 * Writes the request and reads the answer's head; the caller's abort closes the connection
 * and rejects with its reason. A reused connection that ends before any answer (the server
 * closed it while it sat idle) is replaced once by a new one.
 */
async function send(pool: Pool, request: PlainRequest, signal?: AbortSignal): Promise<Response> {
  signal?.throwIfAborted();
  for (let attempt = 0;; attempt++) {
    const reused = attempt === 0 ? pool.take(request.origin) : undefined;
    let wire: Wire | undefined = reused;
    let watched = false;
    try {
      if (!wire) wire = await connectAbortably(pool, request, signal);
      const current = wire;
      signal?.addEventListener("abort", current.abort);
      watched = true;
      const bytes = current.encode(request);
      current.heard = false;
      // writeAll, written out: the way every request takes makes no frame of its own.
      if (bytes) {
        let offset = await current.conn.write(bytes);
        while (offset < bytes.length) offset += await current.conn.write(bytes.subarray(offset));
      } else for (const part of apart(request)) await writeAll(current.conn, part);
      const answer = await readAnswer(pool, request, current, signal);
      watched = false; // the answer's body owns the listener now
      return answer;
    } catch (error) {
      if (watched) signal?.removeEventListener("abort", wire!.abort);
      wire?.close();
      if (signal?.aborted) throw signal.reason;
      if (!(reused && !wire!.heard && closedIdle(error))) throw error;
    }
  }
}

async function connectAbortably(
  pool: Pool,
  request: PlainRequest,
  signal?: AbortSignal,
): Promise<Wire> {
  const opening = pool.connect(request.hostname, request.port);
  if (!signal) return await opening;
  let forget: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    forget = onAbort(signal, () => reject(signal.reason));
  });
  try {
    return await Promise.race([opening, aborted]);
  } catch (error) {
    opening.then((wire) => wire.close(), () => {});
    throw error;
  } finally {
    forget?.();
  }
}

/** Room kept before the body in a connection's write buffer for the head. */
const HEAD_ROOM = 2048;

/** The head's last lines: the Content-Length (when one is due) and the blank line. */
function headOf(request: PlainRequest, size: number): string {
  return request.sized ? `${request.head}content-length: ${size}\r\n\r\n` : `${request.head}\r\n`;
}

/** A large request, or one whose head did not fit: two writes, head and body, the body not copied. */
function apart(request: PlainRequest): [Uint8Array, Uint8Array] {
  const body = typeof request.body === "string"
    ? encoder.encode(request.body)
    : request.body ?? new Uint8Array(0);
  return [encoder.encode(headOf(request, body.length)), body];
}

async function writeAll(conn: ByteConn, bytes: Uint8Array): Promise<void> {
  let offset = await conn.write(bytes);
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** The answer's head, 1xx answers skipped: parsed in place once the whole head is in. */
function headIn(wire: Wire): AnswerHead | undefined {
  for (let at = wire.find(true); at >= 0; at = wire.find(true)) {
    const head = parseAnswerHead(wire.buffer, wire.start, at);
    wire.start = at + 4;
    if (head.status >= 100 && head.status < 200) continue;
    if (head.status < 200 || head.status > 599) {
      throw new TypeError(`answer status ${head.status} out of range`);
    }
    return head;
  }
  return undefined;
}

/** How an answer's body ends. */
type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

/** RFC 9112 §6.3, for the answers a client gets. Pure. */
export function framingOf(
  method: string,
  head: Pick<AnswerHead, "status" | "coding" | "length">,
): Framing {
  if (method === "HEAD" || head.status === 204 || head.status === 304) return { kind: "none" };
  if (head.coding !== undefined) {
    return /(?:^|,)\s*chunked\s*$/i.test(head.coding) ? { kind: "chunked" } : { kind: "close" };
  }
  if (head.length === undefined) return { kind: "close" };
  let length = -1;
  for (const value of head.length.split(",")) {
    const trimmed = value.trim();
    if (!/^\d{1,15}$/.test(trimmed) || (length >= 0 && Number(trimmed) !== length)) {
      throw new TypeError("invalid Content-Length");
    }
    length = Number(trimmed);
  }
  return { kind: "length", length };
}

/**
 * The Response for an answer whose head is read: a short body read whole (the connection goes
 * back to the pool at once), any other streamed, the connection given back or closed at its end.
 */
async function readAnswer(
  pool: Pool,
  request: PlainRequest,
  wire: Wire,
  signal: AbortSignal | undefined,
): Promise<Response> {
  let head = headIn(wire);
  while (!head) {
    // fill(), written out for the same reason as send's write.
    if (!wire.filled(await wire.conn.read(wire.room(MAX_HEAD_BYTES)))) throw closedEarly();
    head = headIn(wire);
  }
  const { status, keepAlive } = head;
  const framing = framingOf(request.method, head);
  const nullBody = status === 204 || status === 205 || status === 304;
  const release = (whole: boolean) => {
    signal?.removeEventListener("abort", wire.abort);
    const reusable = whole && keepAlive && framing.kind !== "close" && wire.start === wire.end;
    if (reusable) pool.give(request.origin, wire);
    else wire.close();
  };
  if (framing.kind === "none") {
    release(true);
    return asResponse(new Answer(status, head.fields, null, request.url));
  }
  if (framing.kind === "length" && framing.length <= pool.bufferBytes) {
    const body = wire.take(framing.length) ?? await wire.exactly(framing.length);
    release(true);
    return asResponse(new Answer(status, head.fields, nullBody ? null : body, request.url));
  }
  const next = bodyChunks(wire, framing);
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = await next();
        if (chunk) return controller.enqueue(chunk);
        controller.close();
        release(true);
      } catch (error) {
        release(false);
        controller.error(signal?.aborted ? signal.reason : error);
      }
    },
    cancel: () => release(false),
  }, { highWaterMark: 0 });
  const init = { status, headers: decodeFields(head.fields) };
  if (nullBody) {
    await stream.cancel();
    return new Response(null, init);
  }
  return new Response(stream, init);
}

/** The body's pieces in order, then null; an error when the connection ends early. */
function bodyChunks(
  wire: Wire,
  framing: { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" },
): () => Promise<Uint8Array | null> {
  const PIECE = 64 * 1024;
  let left = framing.kind === "length" ? framing.length : 0;
  let ended = false;
  if (framing.kind === "close") return () => wire.some(PIECE);
  if (framing.kind === "length") {
    return async () => {
      if (left === 0) return null;
      const piece = await wire.some(Math.min(left, PIECE));
      if (!piece) throw closedEarly();
      left -= piece.length;
      return piece;
    };
  }
  return async () => {
    if (ended) return null;
    if (left === 0) {
      left = chunkSize(await wire.line());
      if (left === 0) {
        while ((await wire.line()) !== ""); // trailer fields, dropped
        ended = true;
        return null;
      }
    }
    const piece = await wire.some(Math.min(left, PIECE));
    if (!piece) throw closedEarly();
    left -= piece.length;
    if (left === 0 && (await wire.line()) !== "") throw new TypeError("malformed chunk");
    return piece;
  };
}

function chunkSize(line: string): number {
  const hex = line.split(";", 1)[0]!.trim();
  if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new TypeError("malformed chunk size");
  return parseInt(hex, 16);
}
