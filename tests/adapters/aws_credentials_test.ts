import assert from "node:assert/strict";
import { systemClock } from "../../src/lib/clock.ts";
import { credentialChain, parseIni } from "../../src/adapters/aws_credentials.ts";
import { fromNodeProviderChain } from "@aws-sdk/credential-providers";
import { FakeClock } from "../support/fake_clock.ts";

const T0 = Date.UTC(2025, 0, 2, 3, 0, 0);

const noFetch: typeof fetch = () => Promise.reject(new Error("IMDS must not be called"));
const noFile = (path: string) => Promise.reject(new Error(`ENOENT: ${path}`));

const FILE = `
# comment
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secretDefault

[ci]
aws_access_key_id=AKIDCI
aws_secret_access_key=secret/CI+x==
aws_session_token = tokenCI
; another comment
[broken]
aws_access_key_id = AKIDBROKEN
`;

/**
 * The environment and the shared file, row by row: what the chain resolves to, where it says the
 * credentials came from, and which files it read (the file answers FILE for any path).
 */
const FILE_ROWS: Array<{
  name: string;
  env: Record<string, string>;
  homeDir?: string;
  credentials: Record<string, string>;
  source: string;
  reads: string[];
}> = [
  {
    name: "environment variables come first",
    env: {
      AWS_ACCESS_KEY_ID: "AKIDENV",
      AWS_SECRET_ACCESS_KEY: "secretEnv",
      AWS_SESSION_TOKEN: "tokenEnv",
      AWS_SHARED_CREDENTIALS_FILE: "/creds",
    },
    credentials: { accessKeyId: "AKIDENV", secretAccessKey: "secretEnv", sessionToken: "tokenEnv" },
    source: "env",
    reads: [],
  },
  {
    name: "shared credentials file: AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE",
    env: { AWS_SHARED_CREDENTIALS_FILE: "/etc/sluice/credentials", AWS_PROFILE: "ci" },
    credentials: {
      accessKeyId: "AKIDCI",
      secretAccessKey: "secret/CI+x==",
      sessionToken: "tokenCI",
    },
    source: "shared-file",
    reads: ["/etc/sluice/credentials"],
  },
  {
    // Only one key in the environment does not count.
    name:
      "shared credentials file: the default profile of ~/.aws/credentials in the home directory",
    env: { AWS_ACCESS_KEY_ID: "AKIDHALF" },
    homeDir: "/home/sluice",
    credentials: { accessKeyId: "AKIDDEFAULT", secretAccessKey: "secretDefault" },
    source: "shared-file",
    reads: ["/home/sluice/.aws/credentials"],
  },
];

for (const row of FILE_ROWS) {
  Deno.test(`aws credentials: ${row.name}`, async () => {
    const reads: string[] = [];
    const chain = credentialChain({
      clock: systemClock,
      env: row.env,
      ...(row.homeDir ? { homeDir: row.homeDir } : {}),
      readTextFile: (path) => {
        reads.push(path);
        return Promise.resolve(FILE);
      },
      fetch: noFetch,
    });
    assert.deepEqual(await chain.get(), row.credentials);
    assert.equal(await chain.source(), row.source);
    assert.deepEqual(reads, row.reads);
  });
}

Deno.test("aws credentials: parseIni reads sections and keys", () => {
  const ini = parseIni(FILE);
  assert.deepEqual([...ini.keys()], ["default", "ci", "broken"]);
  assert.equal(ini.get("ci")?.get("aws_session_token"), "tokenCI");
  assert.equal(ini.get("broken")?.get("aws_secret_access_key"), undefined);
});

interface Imds {
  endpoint: string;
  requests: Array<{ method: string; path: string; token: string | null; ttl: string | null }>;
  /** Credentials served next; Expiration relative to the test clock. */
  next: { key: string; expiration: number };
  close(): Promise<void>;
}

/** A fake IMDSv2: PUT token first; every metadata GET must carry it. */
async function startImds(options: { hang?: boolean } = {}): Promise<Imds> {
  const closing = new AbortController();
  const requests: Imds["requests"] = [];
  const TOKEN = "imds-token-123";
  const imds = {} as Imds;
  imds.next = { key: "AKIDIMDS1", expiration: T0 + 3_600_000 };
  imds.requests = requests;
  const listening = Promise.withResolvers<void>();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => listening.resolve() },
    async (req) => {
      await req.text();
      const path = new URL(req.url).pathname;
      requests.push({
        method: req.method,
        path,
        token: req.headers.get("x-aws-ec2-metadata-token"),
        ttl: req.headers.get("x-aws-ec2-metadata-token-ttl-seconds"),
      });
      if (options.hang) {
        await new Promise<void>((resolve) =>
          closing.signal.addEventListener("abort", () => resolve())
        );
        return new Response("late", { status: 503 });
      }
      if (path === "/latest/api/token") {
        if (req.method !== "PUT" || !req.headers.get("x-aws-ec2-metadata-token-ttl-seconds")) {
          return new Response("", { status: 400 });
        }
        return new Response(TOKEN);
      }
      if (req.headers.get("x-aws-ec2-metadata-token") !== TOKEN) {
        return new Response("", { status: 401 });
      }
      if (path === "/latest/meta-data/iam/security-credentials/") {
        return new Response("sluice-role\n");
      }
      if (path === "/latest/meta-data/iam/security-credentials/sluice-role") {
        return Response.json({
          Code: "Success",
          Type: "AWS-HMAC",
          AccessKeyId: imds.next.key,
          SecretAccessKey: `secret-${imds.next.key}`,
          Token: `token-${imds.next.key}`,
          Expiration: new Date(imds.next.expiration).toISOString().replace(/\.\d{3}/, ""),
        });
      }
      return new Response("", { status: 404 });
    },
  );
  await listening.promise;
  imds.endpoint = `http://127.0.0.1:${server.addr.port}`;
  imds.close = async () => {
    closing.abort();
    await server.shutdown();
  };
  return imds;
}

Deno.test("aws credentials: IMDSv2: token first, role, credentials; cached; refreshed before expiry; shared refresh", async () => {
  const imds = await startImds();
  try {
    const clock = new FakeClock({ start: T0 });
    const chain = credentialChain({
      env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint + "/" },
      homeDir: "/home/nobody",
      readTextFile: noFile,
      clock: clock,
    });
    const first = await chain.get();
    assert.deepEqual(first, {
      accessKeyId: "AKIDIMDS1",
      secretAccessKey: "secret-AKIDIMDS1",
      sessionToken: "token-AKIDIMDS1",
      expiration: T0 + 3_600_000,
    });
    assert.equal(await chain.source(), "imds");
    assert.deepEqual(imds.requests, [
      { method: "PUT", path: "/latest/api/token", token: null, ttl: "21600" },
      {
        method: "GET",
        path: "/latest/meta-data/iam/security-credentials/",
        token: "imds-token-123",
        ttl: null,
      },
      {
        method: "GET",
        path: "/latest/meta-data/iam/security-credentials/sluice-role",
        token: "imds-token-123",
        ttl: null,
      },
    ]);

    // Still fresh 54 minutes later (more than 5 minutes before Expiration): cached.
    clock.set(T0 + 54 * 60_000);
    assert.equal((await chain.get()).accessKeyId, "AKIDIMDS1");
    assert.equal(imds.requests.length, 3);

    // Within 5 minutes of Expiration: refreshed, and concurrent callers share one refresh.
    clock.set(T0 + 56 * 60_000);
    imds.next = { key: "AKIDIMDS2", expiration: T0 + 2 * 3_600_000 };
    const all = await Promise.all([chain.get(), chain.get(), chain.get(), chain.get()]);
    assert.deepEqual(all.map((c) => c.accessKeyId), [
      "AKIDIMDS2",
      "AKIDIMDS2",
      "AKIDIMDS2",
      "AKIDIMDS2",
    ]);
    assert.equal(imds.requests.length, 6);
  } finally {
    await imds.close();
  }
});

Deno.test("aws credentials: a failed refresh keeps serving credentials that have not expired yet", async () => {
  const imds = await startImds();
  const clock = new FakeClock({ start: T0 });
  const chain = credentialChain({
    env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint },
    clock: clock,
    imdsTimeoutMs: 200,
  });
  try {
    assert.equal((await chain.get()).accessKeyId, "AKIDIMDS1");
  } finally {
    await imds.close();
  }
  // IMDS is gone now.
  clock.set(T0 + 58 * 60_000);
  assert.equal((await chain.get()).accessKeyId, "AKIDIMDS1");
  clock.set(T0 + 61 * 60_000);
  await assert.rejects(chain.get(), /Cannot find AWS credentials/);
});

Deno.test("aws credentials: nothing available: one clear error naming every source, without secrets", async () => {
  const imds = await startImds({ hang: true });
  try {
    const chain = credentialChain({
      clock: systemClock,
      env: {
        AWS_SECRET_ACCESS_KEY: "do-not-print-me",
        AWS_PROFILE: "prod",
        AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint,
      },
      homeDir: "/home/sluice",
      readTextFile: () => Promise.resolve(FILE),
      imdsTimeoutMs: 100,
    });
    const err = await chain.get().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof Error);
    assert.match(err.message, /^Cannot find AWS credentials: tried /);
    assert.match(err.message, /environment \(AWS_ACCESS_KEY_ID not set\)/);
    assert.match(
      err.message,
      /shared credentials file \/home\/sluice\/\.aws\/credentials \(no profile \[prod\]\)/,
    );
    assert.match(
      err.message,
      /EC2 instance metadata at http:\/\/127\.0\.0\.1:\d+ \(PUT \/latest\/api\/token timed out after 100 ms\)/,
    );
    assert.doesNotMatch(err.message, /do-not-print-me/);
    await assert.rejects(chain.source(), /Cannot find AWS credentials/);
  } finally {
    await imds.close();
  }
});

Deno.test("aws credentials: unreadable file, profile without keys, IMDS disabled", async () => {
  const missing = credentialChain({
    clock: systemClock,
    env: { AWS_SHARED_CREDENTIALS_FILE: "/nope", AWS_EC2_METADATA_DISABLED: "true" },
    readTextFile: noFile,
    fetch: noFetch,
  });
  await assert.rejects(
    missing.get(),
    /shared credentials file \/nope \(cannot read: ENOENT: \/nope\); EC2 instance metadata \(disabled/,
  );
  const broken = credentialChain({
    clock: systemClock,
    env: { AWS_PROFILE: "broken", AWS_EC2_METADATA_DISABLED: "true" },
    homeDir: "/h",
    readTextFile: () => Promise.resolve(FILE),
    fetch: noFetch,
  });
  await assert.rejects(
    broken.get(),
    /profile \[broken\] lacks aws_access_key_id or aws_secret_access_key/,
  );
});

/**
 * Against the AWS SDK's own chain (@aws-sdk/credential-providers' fromNodeProviderChain): for
 * the environment and the shared credentials file, row by row, both resolve to the same keys.
 * The SDK reads process.env and real files: each row writes FILE to a temporary directory and
 * sets its variables for the SDK's run only.
 */
const SPACED = `
[spaced]
  aws_access_key_id   =   AKIDSPACED
aws_secret_access_key	=	secret spaced
`;

/** Every variable either chain reads; unset for a row unless it gives one. */
const VARIABLES = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_CONFIG_FILE",
  "AWS_PROFILE",
  "AWS_EC2_METADATA_DISABLED",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_ROLE_ARN",
  "HOME",
];

const SDK_ROWS: Array<{ name: string; env: Record<string, string> }> = [
  {
    name: "keys and a session token in the environment win over the file",
    env: {
      AWS_ACCESS_KEY_ID: "AKIDENV",
      AWS_SECRET_ACCESS_KEY: "secretEnv",
      AWS_SESSION_TOKEN: "t",
    },
  },
  {
    name: "keys without a token in the environment",
    env: { AWS_ACCESS_KEY_ID: "AKIDENV2", AWS_SECRET_ACCESS_KEY: "s2" },
  },
  { name: "the file's default profile", env: {} },
  { name: "the file's AWS_PROFILE profile with its session token", env: { AWS_PROFILE: "ci" } },
  { name: "a profile written with spaces and tabs", env: { AWS_PROFILE: "spaced" } },
  {
    name: "one key alone in the environment falls through to the file",
    env: { AWS_ACCESS_KEY_ID: "AKIDHALF" },
  },
];

type Keys = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

const keysOf = (c: Keys): Keys => ({
  accessKeyId: c.accessKeyId,
  secretAccessKey: c.secretAccessKey,
  ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
});

/** What the SDK resolves with `env` as the process environment (restored after). */
async function sdkResolves(env: Record<string, string>): Promise<Keys> {
  const saved = new Map(VARIABLES.map((name) => [name, Deno.env.get(name)]));
  try {
    for (const name of VARIABLES) Deno.env.delete(name);
    for (const [name, value] of Object.entries(env)) Deno.env.set(name, value);
    return keysOf(await fromNodeProviderChain({ ignoreCache: true })());
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
}

/** Keys in the environment, beside AWS_PROFILE=ci in the row where both are set. */
const ENV_KEYS = { AWS_ACCESS_KEY_ID: "AKIDENV", AWS_SECRET_ACCESS_KEY: "secretEnv" };

/** Writes FILE to a temporary directory; the row's environment, pointing at it. */
async function withFile(
  rowEnv: Record<string, string>,
  fn: (env: Record<string, string>) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/credentials`;
    await Deno.writeTextFile(file, FILE + SPACED);
    await fn({
      ...rowEnv,
      AWS_SHARED_CREDENTIALS_FILE: file,
      AWS_CONFIG_FILE: `${dir}/no-config`,
      AWS_EC2_METADATA_DISABLED: "true",
      HOME: dir,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function ourChain(env: Record<string, string>) {
  return credentialChain({
    clock: new FakeClock(),
    env,
    readTextFile: (path) => Deno.readTextFile(path),
    fetch: () => Promise.reject(new Error("IMDS must not be called")),
  });
}

Deno.test("aws credentials: against the SDK, with AWS_PROFILE set too, ours takes the environment's keys (sluice's order: the environment first), the SDK the profile", async () => {
  await withFile({ ...ENV_KEYS, AWS_PROFILE: "ci" }, async (env) => {
    assert.deepEqual(keysOf(await ourChain(env).get()), {
      accessKeyId: "AKIDENV",
      secretAccessKey: "secretEnv",
    });
    assert.deepEqual(await sdkResolves(env), {
      accessKeyId: "AKIDCI",
      secretAccessKey: "secret/CI+x==",
      sessionToken: "tokenCI",
    });
  });
});

for (const row of SDK_ROWS) {
  Deno.test(`aws credentials: against the SDK, ${row.name}`, async () => {
    await withFile(row.env, async (env) => {
      assert.deepEqual(keysOf(await ourChain(env).get()), await sdkResolves(env));
    });
  });
}
