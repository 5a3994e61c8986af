/**
 * The enrichment API (docs/messages.md): single and batch profile lookups.
 * One request per call; retries, batching and caching live above it.
 */
import { HttpError, LocalError } from "../lib/errors.ts";
import type { Traced } from "../lib/tracer.ts";
import { httpCall, type HttpCallOptions } from "./http_call.ts";

/** A user profile: every field the API returned except `meta`. */
export type Profile = Record<string, unknown>;

/** Drops `meta`, which describes the request, not the user. */
export function profileFromResponse(body: Record<string, unknown>): Profile {
  const { meta: _meta, ...profile } = body;
  return profile;
}

export interface EnrichClientOptions extends Omit<HttpCallOptions, "target"> {
  /** Base URL, e.g. `http://10.0.0.5:9102`. */
  baseUrl: string;
}

/** A batch answer: found profiles, unknown ids, and ids to ask again. */
export interface BatchLookup {
  users: Map<string, Profile>;
  missing: Set<string>;
  /** Ids listed in `errors`, or in none of the three lists. */
  retry: Map<string, string>;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError("enrichment", 200, `${what} is not JSON`, {
      category: "TRANSIENT",
      cause: error,
    });
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export class EnrichClient {
  readonly #options: EnrichClientOptions;
  readonly #http: HttpCallOptions;

  constructor(options: EnrichClientOptions) {
    this.#options = options;
    this.#http = { ...options, target: "enrichment" };
  }

  /** One profile; `null` for an unknown user (404). Other statuses throw HttpError. */
  async getUser(userId: string, signal?: AbortSignal, trace?: Traced): Promise<Profile | null> {
    if (userId === "." || userId === "..") {
      // URL parsing removes these path segments even percent-encoded: ask by POST instead.
      const answer = await this.getUsers([userId], signal, trace);
      const profile = answer.users.get(userId);
      if (profile) return profile;
      if (answer.missing.has(userId)) return null;
      throw new HttpError("enrichment", 200, `lookup for ${userId} failed`, {
        category: "TRANSIENT",
      });
    }
    let path: string;
    try {
      path = encodeURIComponent(userId);
    } catch (error) {
      // A lone surrogate: no request can name this id. Permanent, and no breaker counts it.
      throw new LocalError(
        "Cannot look up user_id: received a string that is not well-formed Unicode, expected one that can be percent-encoded",
        {
          cause: error,
        },
      );
    }
    const url = `${this.#options.baseUrl}/v1/users/${path}`;
    const answer = await httpCall(this.#http, url, { method: "GET" }, signal, trace);
    if (answer.status === 404) return null;
    if (answer.status !== 200) {
      throw new HttpError("enrichment", answer.status, answer.text, {
        retryAfterMs: answer.retryAfterMs,
      });
    }
    const body = parseJson(answer.text, "profile");
    if (!isObject(body)) {
      throw new HttpError("enrichment", 200, "profile is not an object", { category: "TRANSIENT" });
    }
    return profileFromResponse(body);
  }

  /**
   * Many profiles in one `POST /v1/users:batch`. Non-200 statuses throw
   * HttpError, so the caller can split on 400/413 and fall back on 404/405.
   */
  async getUsers(
    userIds: readonly string[],
    signal?: AbortSignal,
    trace?: Traced,
  ): Promise<BatchLookup> {
    const answer = await httpCall(
      this.#http,
      `${this.#options.baseUrl}/v1/users:batch`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ user_ids: userIds }),
      },
      signal,
      trace,
    );
    if (answer.status !== 200) {
      throw new HttpError("enrichment", answer.status, answer.text, {
        retryAfterMs: answer.retryAfterMs,
        // 404/405 here means "no batch endpoint", not "unknown user".
        category: answer.status === 404 || answer.status === 405 ? "PERMANENT" : undefined,
      });
    }
    const body = parseJson(answer.text, "batch answer");
    if (!isObject(body)) {
      throw new HttpError("enrichment", 200, "batch answer is not an object", {
        category: "TRANSIENT",
      });
    }
    const wanted = new Set(userIds);
    const result: BatchLookup = { users: new Map(), missing: new Set(), retry: new Map() };
    for (const user of Array.isArray(body.users) ? body.users : []) {
      if (isObject(user) && wanted.has(String(user.user_id))) {
        result.users.set(String(user.user_id), profileFromResponse(user));
      }
    }
    for (const id of Array.isArray(body.missing) ? body.missing : []) {
      if (wanted.has(String(id)) && !result.users.has(String(id))) result.missing.add(String(id));
    }
    for (const entry of Array.isArray(body.errors) ? body.errors : []) {
      const id = isObject(entry) ? String(entry.user_id) : String(entry);
      if (wanted.has(id)) {
        result.users.delete(id);
        result.missing.delete(id);
        result.retry.set(id, isObject(entry) ? String(entry.code ?? "error") : "error");
      }
    }
    for (const id of wanted) {
      if (!result.users.has(id) && !result.missing.has(id) && !result.retry.has(id)) {
        result.retry.set(id, "not_answered");
      }
    }
    return result;
  }
}
