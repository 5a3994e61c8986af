/**
 * A raw TCP client that holds a server's connection the way a slowloris does: a partial request
 * head, then one byte every `everyMs` (or nothing at all). Resolves with how long the server kept
 * the connection open, or `undefined` when it was still open after `giveUpMs`.
 */
export interface TrickleOptions {
  port: number;
  /** What to send first, e.g. a request line and a header without the closing blank line. */
  start: string;
  /** Send one more byte this often; 0 sends nothing more. */
  everyMs: number;
  giveUpMs: number;
}

export async function trickle(o: TrickleOptions): Promise<number | undefined> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: o.port });
  const started = performance.now();
  let closedAt: number | undefined;
  const reading = (async () => {
    const buffer = new Uint8Array(1024);
    try {
      while ((await conn.read(buffer)) !== null) {
        // whatever the server says (a 408, say), the question is when it closes
      }
    } catch {
      // reset by the server: closed too
    }
    closedAt = performance.now();
  })();
  const encoder = new TextEncoder();
  try {
    if (o.start) await conn.write(encoder.encode(o.start));
    while (closedAt === undefined && performance.now() - started < o.giveUpMs) {
      const wait = o.everyMs || 50;
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (o.everyMs && closedAt === undefined) {
        await conn.write(encoder.encode("X")).catch(() => {});
      }
    }
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the server already
    }
    await reading;
  }
  return closedAt === undefined || closedAt - started > o.giveUpMs ? undefined : closedAt - started;
}
