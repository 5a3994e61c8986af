/**
 * AWS credential chain: environment variables, then the shared credentials file, then the EC2
 * instance role through IMDSv2. Runtime-neutral: file reading, the environment and the home
 * directory are injected by the face layer, so this runs the same under Deno and Bun.
 */
import type { Clock } from "../lib/clock.ts";
import { RedirectError } from "../lib/errors.ts";
import {
  fetchNoRedirect,
  globalFetch,
  readTextCapped,
  readTextPrefix,
} from "../lib/guarded_fetch.ts";
import { scrubAwsText } from "./aws_error_text.ts";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** epoch ms; absent for long-lived keys */
  expiration?: number;
}

export interface CredentialChainOptions {
  /**
   * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_SHARED_CREDENTIALS_FILE,
   * AWS_PROFILE, AWS_EC2_METADATA_SERVICE_ENDPOINT (default http://169.254.169.254),
   * AWS_EC2_METADATA_DISABLED ("true" skips IMDS).
   */
  env: Record<string, string | undefined>;
  /** For ~/.aws/credentials when AWS_SHARED_CREDENTIALS_FILE is unset; no default (no file lookup). */
  homeDir?: string;
  /** Injected file reader (Deno.readTextFile / node:fs); without it the shared file is skipped. */
  readTextFile?: (path: string) => Promise<string>;
  /** Transport for IMDS, default the global fetch. */
  fetch?: typeof fetch;
  /** Expiry decisions (its wall clock: expirations are dates) and IMDS timeouts. */
  clock: Pick<Clock, "now" | "timer">;
  /** IMDS timeout per request, default 1000 ms, so a non-EC2 host fails fast */
  imdsTimeoutMs?: number;
  /** refresh this long before Expiration, default 5 min */
  refreshBeforeMs?: number;
  /**
   * Shared-file credentials carry no expiry, yet a tool may rotate the file (temporary keys with
   * a session token): they are read again this long after the last read. Default 5 min.
   */
  fileRefreshMs?: number;
}

export type CredentialSource = "env" | "shared-file" | "imds";

interface Resolved {
  credentials: AwsCredentials;
  source: CredentialSource;
  /** When the chain produced them (the `now` clock). */
  readAt: number;
  /** A service answered ExpiredToken for them: never served again. */
  refused?: boolean;
}

/** The chain's provider: current credentials, where they came from, and a way to refuse them. */
export interface CredentialProvider {
  get(): Promise<AwsCredentials>;
  source(): Promise<CredentialSource>;
  /**
   * A service answered ExpiredToken for `used`: the next get() resolves the chain again (once
   * for many such answers: credentials other than the current ones are ignored).
   */
  expired(used: AwsCredentials): void;
}

/**
 * returns a provider: call it for current credentials (cached; refreshed before expiry, shared-file
 * ones re-read every `fileRefreshMs`, any of them after an ExpiredToken answer; concurrent calls
 * share one refresh). Throws a clear Error naming every source tried when none works. Never logs
 * secrets.
 */
export function credentialChain(options: CredentialChainOptions): CredentialProvider {
  const now = () => options.clock.now();
  const ages = {
    refreshBeforeMs: options.refreshBeforeMs ?? 5 * 60_000,
    fileRefreshMs: options.fileRefreshMs ?? 5 * 60_000,
  };
  let cached: Resolved | undefined;
  let refreshing: Promise<Resolved> | undefined;

  async function current(): Promise<Resolved> {
    if (cached && isFresh(cached, now(), ages)) return cached;
    // Everyone who arrives during a refresh waits for the same one.
    refreshing ??= resolveChain(options)
      .then((r) => (cached = r))
      .catch((err) => {
        // Keep serving credentials that have not actually expired yet: a refresh may fail
        // briefly (IMDS busy, the shared file being rewritten).
        if (stillUsable(cached, now())) return cached;
        throw err;
      })
      .finally(() => {
        refreshing = undefined;
      });
    return await refreshing;
  }

  return {
    async get() {
      return (await current()).credentials;
    },
    async source() {
      return (await current()).source;
    },
    expired(used) {
      if (cached && cached.credentials === used) cached.refused = true;
    },
  };
}

/** Whether credentials resolved before may be served at `now` without resolving again. */
function isFresh(
  r: Resolved,
  now: number,
  ages: { refreshBeforeMs: number; fileRefreshMs: number },
): boolean {
  if (r.refused) return false;
  const exp = r.credentials.expiration;
  if (exp !== undefined) return now < exp - ages.refreshBeforeMs;
  // The environment cannot change under a running process; a file can.
  return r.source !== "shared-file" || now < r.readAt + ages.fileRefreshMs;
}

/** After a failed refresh: what may still be served (not refused, not past its expiry). */
function stillUsable(r: Resolved | undefined, now: number): r is Resolved {
  if (!r || r.refused) return false;
  const exp = r.credentials.expiration;
  return exp === undefined ? r.source === "shared-file" : now < exp;
}

/** The environment, the shared file, the instance role: the first that answers. */
async function resolveChain(options: CredentialChainOptions): Promise<Resolved> {
  const { env } = options;
  const tried: string[] = [];
  const readAt = options.clock.now();
  const fromEnv = envCredentials(env, tried);
  if (fromEnv) return { credentials: fromEnv, source: "env", readAt };
  const fromFile = await fileCredentials(env, options, tried);
  if (fromFile) return { credentials: fromFile, source: "shared-file", readAt };
  if (/^true$/i.test(env.AWS_EC2_METADATA_DISABLED ?? "")) {
    tried.push("EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)");
  } else {
    const endpoint = (env.AWS_EC2_METADATA_SERVICE_ENDPOINT || "http://169.254.169.254")
      .replace(/\/+$/, "");
    try {
      const imds = { timeoutMs: options.imdsTimeoutMs ?? 1000, timer: options.clock.timer };
      const credentials = await imdsCredentials(endpoint, options.fetch ?? globalFetch, imds);
      return { credentials, source: "imds", readAt };
    } catch (err) {
      tried.push(`EC2 instance metadata at ${endpoint} (${messageOf(err)})`);
    }
  }
  throw new Error(`Cannot find AWS credentials: tried ${tried.join("; ")}`);
}

function envCredentials(
  env: Record<string, string | undefined>,
  tried: string[],
): AwsCredentials | undefined {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (accessKeyId && secretAccessKey) {
    const credentials: AwsCredentials = { accessKeyId, secretAccessKey };
    if (env.AWS_SESSION_TOKEN) credentials.sessionToken = env.AWS_SESSION_TOKEN;
    return credentials;
  }
  const missing = [
    accessKeyId ? "" : "AWS_ACCESS_KEY_ID",
    secretAccessKey ? "" : "AWS_SECRET_ACCESS_KEY",
  ].filter(Boolean);
  tried.push(`environment (${missing.join(" and ")} not set)`);
  return undefined;
}

async function fileCredentials(
  env: Record<string, string | undefined>,
  options: CredentialChainOptions,
  tried: string[],
): Promise<AwsCredentials | undefined> {
  const path = env.AWS_SHARED_CREDENTIALS_FILE ||
    (options.homeDir ? `${options.homeDir.replace(/\/+$/, "")}/.aws/credentials` : undefined);
  const profile = env.AWS_PROFILE || "default";
  if (!path) {
    tried.push("shared credentials file (no AWS_SHARED_CREDENTIALS_FILE and no home directory)");
    return undefined;
  }
  if (!options.readTextFile) {
    tried.push(`shared credentials file ${path} (no file reader)`);
    return undefined;
  }
  let text: string;
  try {
    text = await options.readTextFile(path);
  } catch (err) {
    tried.push(`shared credentials file ${path} (cannot read: ${messageOf(err)})`);
    return undefined;
  }
  const sections = parseIni(text);
  const section = sections.get(profile) ?? sections.get(`profile ${profile}`);
  if (!section) {
    tried.push(`shared credentials file ${path} (no profile [${profile}])`);
    return undefined;
  }
  const accessKeyId = section.get("aws_access_key_id");
  const secretAccessKey = section.get("aws_secret_access_key");
  if (!accessKeyId || !secretAccessKey) {
    tried.push(
      `shared credentials file ${path} (profile [${profile}] lacks aws_access_key_id or aws_secret_access_key)`,
    );
    return undefined;
  }
  const credentials: AwsCredentials = { accessKeyId, secretAccessKey };
  const token = section.get("aws_session_token");
  if (token) credentials.sessionToken = token;
  return credentials;
}

/** Minimal INI: [section] headers, key = value lines, # and ; comment lines. */
export function parseIni(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      const name = (header[1] ?? "").trim();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || !current) continue;
    current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return sections;
}

/** IMDSv2: a session token first, then the role name, then the role's credentials. */
/** Each IMDS request's timeout, on the chain's clock. */
interface ImdsTimeout {
  timeoutMs: number;
  timer: Clock["timer"];
}

async function imdsCredentials(
  endpoint: string,
  doFetch: typeof fetch,
  timeoutMs: ImdsTimeout,
): Promise<AwsCredentials> {
  const token = await imdsRequest(doFetch, `${endpoint}/latest/api/token`, {
    method: "PUT",
    headers: { "x-aws-ec2-metadata-token-ttl-seconds": "21600" },
  }, timeoutMs);
  const auth = { "x-aws-ec2-metadata-token": token.trim() };
  const base = `${endpoint}/latest/meta-data/iam/security-credentials/`;
  const roles = await imdsRequest(doFetch, base, { method: "GET", headers: auth }, timeoutMs);
  const role = roles.split("\n")[0]?.trim();
  if (!role) throw new Error("no instance role attached");
  const text = await imdsRequest(
    doFetch,
    base + encodeURIComponent(role),
    { method: "GET", headers: auth },
    timeoutMs,
  );
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`role ${role}: credentials document is not JSON`);
  }
  if (typeof doc.Code === "string" && doc.Code !== "Success") {
    throw new Error(`role ${role}: ${scrubAwsText(`${doc.Code} ${String(doc.Message ?? "")}`)}`);
  }
  const { AccessKeyId, SecretAccessKey, Token, Expiration } = doc;
  if (typeof AccessKeyId !== "string" || typeof SecretAccessKey !== "string") {
    throw new Error(`role ${role}: credentials document lacks AccessKeyId/SecretAccessKey`);
  }
  const credentials: AwsCredentials = {
    accessKeyId: AccessKeyId,
    secretAccessKey: SecretAccessKey,
  };
  if (typeof Token === "string" && Token) credentials.sessionToken = Token;
  if (typeof Expiration === "string") {
    const ms = Date.parse(Expiration);
    if (Number.isFinite(ms)) credentials.expiration = ms;
  }
  return credentials;
}

/** IMDS answers are a token, a role name or a small JSON document. */
const MAX_IMDS_BYTES = 64 * 1024;

/** One IMDS request: no redirect followed (keys from wherever it points are no instance's). */
async function imdsRequest(
  doFetch: typeof fetch,
  url: string,
  init: RequestInit,
  imds: ImdsTimeout,
): Promise<string> {
  const controller = new AbortController();
  const cancel = imds.timer(imds.timeoutMs, () => controller.abort());
  const path = new URL(url).pathname;
  try {
    const response = await fetchNoRedirect(doFetch, "IMDS", url, init, controller.signal);
    if (!response.ok) {
      const text = scrubAwsText(await readTextPrefix(response, 256));
      throw new Error(
        `${init.method} ${path} answered HTTP ${response.status}${text ? `: ${text}` : ""}`,
      );
    }
    return await readTextCapped(response, "IMDS", MAX_IMDS_BYTES);
  } catch (err) {
    if (controller.signal.aborted) {
      throw new Error(`${init.method} ${path} timed out after ${imds.timeoutMs} ms`, {
        cause: err,
      });
    }
    if (err instanceof RedirectError) {
      const where = err.location ? ` to ${err.location}` : "";
      throw new Error(`${init.method} ${path} redirected${where} (not followed)`, { cause: err });
    }
    throw err;
  } finally {
    cancel();
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
