/**
 * The health and metrics server: a Hono app, served by main.ts with the
 * runtime's own server, and driven by tests through `app.request()`.
 */
import { Hono } from "hono";
import type { Registry } from "../lib/metrics.ts";

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

export function createServer(options: ServerOptions): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => {
    const { alive } = options.health();
    return c.json({ status: alive ? "ok" : "stopped" }, alive ? 200 : 503);
  });
  app.get("/readyz", (c) => {
    const { alive, notReady } = options.health();
    const reasons = alive ? notReady : ["receive loop is not running", ...notReady];
    return reasons.length === 0
      ? c.json({ status: "ready" }, 200)
      : c.json({ status: "not_ready", reasons }, 503);
  });
  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(options.registry.render());
  });
  app.notFound((c) => c.json({ error: "not found" }, 404));
  return app;
}
