/**
 * A small HTTP/1.1 server for the health and metrics endpoints, on a listener the runtime shim
 * opens. Deno.serve has no header-read or idle timeout: a client sending partial headers, or a
 * byte every few seconds, kept its connection open for as long as it liked, and enough of them
 * would exhaust the worker's file descriptors. Here a connection gets `idleTimeoutMs` to start a
 * request and `headerTimeoutMs` from its first byte to the end of its head, whatever it trickles;
 * a request head is at most `maxHeaderBytes`; at most `maxConnections` are open at once. Bodies
 * are never read (the endpoints are GETs): a request with one is answered, then closed.
 */
import type { Clock } from "./clock.ts";

/** The parts of a TCP connection used here (Deno.Conn has them). */
export interface ByteConn {
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  /** Ends our side only (TCP FIN), so an answer is not lost to a reset over unread input. */
  closeWrite?(): Promise<void>;
  close(): void;
}

/** The parts of a TCP listener used here (Deno.Listener has them). */
export interface ByteListener {
  accept(): Promise<ByteConn>;
  close(): void;
}

export interface Http1Options {
  /** The connections' timers. */
  clock: Pick<Clock, "timer">;
  /** Base of each request's URL, e.g. `http://127.0.0.1:9400` (the Host header is not trusted). */
  origin: string;
  /** From a connection's open (or its last answer) to the first byte of a request. Default 10 s. */
  idleTimeoutMs?: number;
  /** From a request's first byte to the end of its head; also bounds writing the answer. 5 s. */
  headerTimeoutMs?: number;
  /** Default 16 KiB: the head is answered 431 beyond it. */
  maxHeaderBytes?: number;
  /** Default 64: a connection beyond it is closed at once. */
  maxConnections?: number;
}

type Handler = (request: Request) => Response | Promise<Response>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HEAD_END = [13, 10, 13, 10];

/** Serves `handler` on `listener` until close(), which ends every connection. */
export function serveHttp1(
  listener: ByteListener,
  handler: Handler,
  options: Http1Options,
): { close(): Promise<void> } {
  const open = new Set<ByteConn>();
  const loops = new Set<Promise<void>>();
  const maxConnections = options.maxConnections ?? 64;
  let closed = false;
  const accepting = (async () => {
    while (!closed) {
      let conn: ByteConn;
      try {
        conn = await listener.accept();
      } catch {
        if (closed) return;
        continue; // one failed accept (EMFILE, a reset) must not stop the server
      }
      if (open.size >= maxConnections) {
        conn.close();
        continue;
      }
      open.add(conn);
      const loop = serveConnection(conn, handler, options).finally(() => {
        open.delete(conn);
        loops.delete(loop);
      });
      loops.add(loop);
    }
  })();
  return {
    async close() {
      closed = true;
      listener.close();
      for (const conn of open) safeClose(conn);
      await accepting;
      await Promise.all([...loops]);
    },
  };
}

function safeClose(conn: ByteConn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** One connection: requests in turn until the client or a timeout ends it. */
async function serveConnection(conn: ByteConn, handler: Handler, o: Http1Options): Promise<void> {
  const idleMs = o.idleTimeoutMs ?? 10_000;
  const headerMs = o.headerTimeoutMs ?? 5_000;
  const maxHeader = o.maxHeaderBytes ?? 16 * 1024;
  let cancel: (() => void) | undefined;
  const arm = (ms: number) => {
    cancel?.();
    cancel = o.clock.timer(ms, () => safeClose(conn));
  };
  let pending: Uint8Array = new Uint8Array(0);
  try {
    for (;;) {
      arm(idleMs);
      const head = await readHead(conn, pending, maxHeader, () => arm(headerMs));
      if (head === undefined) return;
      arm(headerMs); // bounds the handler, the write and the lingering close too
      if (head === "too large") return await answerAndClose(conn, plain(431));
      pending = head.rest;
      const request = parseHead(head.text, o.origin);
      if (!request) return await answerAndClose(conn, plain(400));
      const response = await respond(handler, request.request);
      const headOnly = request.method === "HEAD";
      if (!request.keepAlive || request.hasBody) {
        return await answerAndClose(conn, response, headOnly);
      }
      await answer(conn, response, "keep-alive", headOnly);
    }
  } catch {
    // A closed or reset connection, or a timeout that closed it: nothing to answer.
  } finally {
    cancel?.();
    safeClose(conn);
  }
}

/**
 * Reads until the blank line that ends a head; `started` is called at its first byte.
 * Undefined when the client closed first.
 */
async function readHead(
  conn: ByteConn,
  carried: Uint8Array,
  maxHeader: number,
  started: () => void,
): Promise<{ text: string; rest: Uint8Array } | "too large" | undefined> {
  let data: Uint8Array = carried;
  if (data.length > 0) started();
  const chunk = new Uint8Array(4096);
  for (;;) {
    const end = indexOfHeadEnd(data);
    if (end > maxHeader || (end < 0 && data.length > maxHeader)) return "too large";
    if (end >= 0) {
      return { text: decoder.decode(data.subarray(0, end)), rest: data.slice(end + 4) };
    }
    const n = await conn.read(chunk);
    if (n === null) return undefined;
    if (data.length === 0 && n > 0) started();
    const next = new Uint8Array(data.length + n);
    next.set(data);
    next.set(chunk.subarray(0, n), data.length);
    data = next;
  }
}

function indexOfHeadEnd(data: Uint8Array): number {
  outer: for (let i = 0; i + 3 < data.length; i++) {
    for (let j = 0; j < 4; j++) if (data[i + j] !== HEAD_END[j]) continue outer;
    return i;
  }
  return -1;
}

interface ParsedHead {
  request: Request;
  method: string;
  keepAlive: boolean;
  hasBody: boolean;
}

/** The request line and headers as a Request (no body); undefined for anything malformed. */
function parseHead(text: string, origin: string): ParsedHead | undefined {
  const [line, ...fields] = text.split("\r\n");
  const match = /^([A-Z]{1,16}) (\/\S*) HTTP\/1\.([01])$/.exec(line ?? "");
  if (!match) return undefined;
  const [, method, target, minor] = match as unknown as [string, string, string, string];
  const headers = new Headers();
  try {
    for (const field of fields) {
      const colon = field.indexOf(":");
      if (colon <= 0) return undefined;
      headers.append(field.slice(0, colon), field.slice(colon + 1).trim());
    }
    const connection = headers.get("connection")?.toLowerCase() ?? "";
    const hasBody = headers.has("transfer-encoding") ||
      (headers.has("content-length") && headers.get("content-length") !== "0");
    const keepAlive = minor === "1" ? !connection.includes("close") : false;
    const request = new Request(new URL(target, origin), { method, headers });
    return { request, method, keepAlive, hasBody };
  } catch {
    return undefined; // a header name or value, or a method, the fetch API refuses
  }
}

async function respond(handler: Handler, request: Request): Promise<Response> {
  try {
    return await handler(request);
  } catch {
    return plain(500);
  }
}

function plain(status: number): Response {
  return new Response(`${status}\n`, { status, headers: { "content-type": "text/plain" } });
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};
const SKIPPED = new Set(["content-length", "transfer-encoding", "connection", "keep-alive"]);

async function answer(
  conn: ByteConn,
  response: Response,
  connection: "keep-alive" | "close",
  headOnly = false,
): Promise<void> {
  const body = new Uint8Array(await response.arrayBuffer());
  const reason = response.statusText || REASONS[response.status] || "";
  let head = `HTTP/1.1 ${response.status} ${reason}\r\n`;
  for (const [name, value] of response.headers) {
    if (!SKIPPED.has(name)) head += `${name}: ${value}\r\n`;
  }
  head += `content-length: ${body.length}\r\nconnection: ${connection}\r\n\r\n`;
  await writeAll(conn, encoder.encode(head));
  if (!headOnly) await writeAll(conn, body);
}

/**
 * The last answer on a connection: written, our side shut, then what the client still sends
 * (an unread body, the rest of an oversized head) read and dropped, up to 64 KiB, so closing
 * with unread input does not reset the connection before the client has read the answer.
 */
async function answerAndClose(conn: ByteConn, response: Response, headOnly = false) {
  await answer(conn, response, "close", headOnly);
  if (!conn.closeWrite) return;
  await conn.closeWrite();
  const sink = new Uint8Array(4096);
  for (let drained = 0; drained < 64 * 1024;) {
    const n = await conn.read(sink);
    if (n === null) return;
    drained += n;
  }
}

async function writeAll(conn: ByteConn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}
