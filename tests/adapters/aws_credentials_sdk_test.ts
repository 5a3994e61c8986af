/**
 * The credential chain against the AWS SDK's own (@aws-sdk/credential-providers'
 * fromNodeProviderChain): for the environment and the shared credentials file, row by row, both
 * must resolve to the same keys. The SDK reads process.env and real files, so each row writes its
 * file to a temporary directory and sets its variables for the SDK's run only.
 */
import assert from "node:assert/strict";
import { fromNodeProviderChain } from "@aws-sdk/credential-providers";
import { credentialChain } from "../../src/adapters/aws_credentials.ts";
import { FakeClock } from "../support/fake_clock.ts";

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

const ROWS: Array<{ name: string; env: Record<string, string> }> = [
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
    await Deno.writeTextFile(file, FILE);
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

Deno.test("aws credentials against the SDK: with AWS_PROFILE set too, ours takes the environment's keys (sluice's order: the environment first), the SDK the profile", async () => {
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

for (const row of ROWS) {
  Deno.test(`aws credentials against the SDK: ${row.name}`, async () => {
    await withFile(row.env, async (env) => {
      assert.deepEqual(keysOf(await ourChain(env).get()), await sdkResolves(env));
    });
  });
}
