/**
 * What a request that got no answer ran into, for logs, /readyz and check-config: "fetch
 * failed" says nothing. Read from the error's cause chain: Deno puts the reason in a cause's
 * message (`… client error (Connect): tcp connect error: Connection refused (os error 111)`),
 * Bun in the error's `code` (`ECONNREFUSED`). Pure; only on the failure path.
 */

export type NetworkFailureKind =
  | "timeout"
  | "dns"
  | "refused"
  | "not permitted"
  | "unreachable"
  | "tls"
  | "reset"
  | "other";

/** First match wins: a TLS failure also says "Connect", a refusal never says "certificate". */
const KINDS: ReadonlyArray<[NetworkFailureKind, RegExp]> = [
  ["timeout", /TimeoutError|timed out|ETIMEDOUT|os error 110\b/i],
  ["dns", /ENOTFOUND|EAI_AGAIN|EAI_NONAME|dns error|failed to lookup address|getaddrinfo/i],
  ["refused", /ECONNREFUSED|connection refused|os error 111\b/i],
  ["not permitted", /EPERM|EACCES|operation not permitted|permission denied|os error 1\)/i],
  ["unreachable", /ENETUNREACH|EHOSTUNREACH|network is unreachable|no route to host/i],
  ["tls", /EPROTO|CERT|certificate|\btls\b|\bssl\b|handshake|InvalidContentType|corrupt message/i],
  [
    "reset",
    /ECONNRESET|EPIPE|connection reset|broken pipe|connection closed|socket connection was closed/i,
  ],
];

const HOW: Record<NetworkFailureKind, (host: string) => string> = {
  timeout: (host) => `the connection to ${host} timed out`,
  dns: (host) => `DNS lookup of ${host.replace(/:\d+$/, "")} failed`,
  refused: (host) => `connection refused by ${host} (nothing listens there)`,
  "not permitted": (host) =>
    `connecting to ${host} is not permitted (a firewall, or the unit's IPAddressAllow=)`,
  unreachable: (host) => `${host} is unreachable (no route to it)`,
  tls: (host) => `TLS with ${host} failed`,
  reset: (host) => `the connection to ${host} was closed before the answer`,
  other: (host) => `no answer from ${host}`,
};

/** A URL, or a `(host:port)`, in a runtime's message: a host name must not decide the kind. */
const URLS = /\(?\b[a-z][a-z0-9+.-]*:\/\/[^\s)]*\)?|\((?:[0-9.]+|\[[0-9a-f:]+\]):\d+\)/gi;

interface Cause {
  code: string;
  message: string;
}

/** The error and its causes, outermost first, their codes and messages without URLs. */
function causes(error: unknown): Cause[] {
  const out: Cause[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    const e = current as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown };
    const name = typeof e.name === "string" ? e.name : "";
    const code = typeof e.code === "string" ? e.code : "";
    const message = typeof e.message === "string" ? e.message : String(current);
    out.push({ code: `${name} ${code}`.trim(), message: message.replace(URLS, "") });
    current = typeof current === "object" ? e.cause : undefined;
  }
  return out;
}

export function networkFailureKind(error: unknown): NetworkFailureKind {
  const all = causes(error).map((c) => `${c.code} ${c.message}`).join(" | ");
  return KINDS.find(([, pattern]) => pattern.test(all))?.[0] ?? "other";
}

/** `host[:port]` of a URL, or the text itself when it is none. */
function hostOf(url: string): string {
  try {
    return new URL(url).host || url;
  } catch {
    return url;
  }
}

/**
 * One phrase: which failure, and for which host, e.g. `connection refused by 127.0.0.1:8081
 * (nothing listens there)`, with the runtime's own words last for TLS and the unknown.
 */
export function describeNetworkFailure(error: unknown, url: string): string {
  const kind = networkFailureKind(error);
  const phrase = HOW[kind](hostOf(url));
  if (kind !== "tls" && kind !== "other") return phrase;
  const innermost = causes(error).at(-1);
  // Deno's words after its request prefix; Bun's with its code.
  const words = innermost?.message.replace(/^.*client error \([^)]*\):\s*/, "").trim();
  const code = innermost?.code.replace(/^(TypeError|Error)\s*/, "");
  const detail = [words, code && !words?.includes(code) ? `(${code})` : ""].filter(Boolean);
  return detail.length > 0 ? `${phrase}: ${detail.join(" ")}` : phrase;
}
