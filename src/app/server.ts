/**
 * The health and metrics server: a Hono app, served by main.ts with the
 * runtime's own server, and driven by tests through `app.request()`.
 */
import { type Context, Hono } from "hono";
import type { Registry } from "../lib/metrics.ts";
import { escapeTerminal } from "../lib/terminal_text.ts";

export interface Health {
  /** The receive loop is running. */
  alive: boolean;
  /** Reasons the worker is not ready (SQS failing, a breaker open); empty = ready. */
  notReady: string[];
}

export interface ServerOptions {
  registry: Registry;
  health: () => Health;
}

/**
 * A JSON answer that a terminal can show: /readyz's reasons carry SQS's error texts and a
 * downstream's Location, and JSON.stringify leaves C1 and bidirectional controls raw (their
 * `\u` escapes decode to the same value).
 */
function inertJson(c: Context, value: unknown, status: 200 | 404 | 503): Response {
  return c.body(escapeTerminal(JSON.stringify(value)), status, {
    "content-type": "application/json",
  });
}

export function createServer(options: ServerOptions): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => {
    const { alive } = options.health();
    return inertJson(c, { status: alive ? "ok" : "stopped" }, alive ? 200 : 503);
  });
  app.get("/readyz", (c) => {
    const { alive, notReady } = options.health();
    const reasons = alive ? notReady : ["receive loop is not running", ...notReady];
    return reasons.length === 0
      ? inertJson(c, { status: "ready" }, 200)
      : inertJson(c, { status: "not_ready", reasons }, 503);
  });
  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(options.registry.render());
  });
  app.notFound((c) => inertJson(c, { error: "not found" }, 404));
  return app;
}
