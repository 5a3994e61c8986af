/**
 * `check-config --probe --s3-bucket NAME`: whether the worker can read S3 payloads from a bucket,
 * by a GetObject of a key that does not exist, signed as the worker signs (docs/payloads.md).
 */
import type { Config } from "../app/config.ts";
import { createS3Client } from "../app/aws_clients.ts";
import { S3Error } from "../adapters/s3_client.ts";
import type { CliDeps } from "./cli_deps.ts";
import type { ProbeResult } from "./probe_http.ts";

/** The key asked for: any missing key would do. */
export const PROBE_KEY = "sluice-check-config-probe/missing";

/** What an S3 answer to the probe says about the bucket and the worker's access. */
export function s3ProbeVerdict(bucket: string, error: unknown): ProbeResult {
  const name = `S3 bucket ${bucket}`;
  if (error === undefined) return { ok: true, line: `${name}: readable (GetObject allowed)` };
  if (!(error instanceof S3Error)) {
    return { ok: false, line: `${name}: ${error instanceof Error ? error.message : error}` };
  }
  if (error.code === "NoSuchKey") {
    return { ok: true, line: `${name}: readable (s3:GetObject allowed; a missing key is a 404)` };
  }
  if (error.code === "NoSuchBucket") {
    return { ok: false, line: `${name}: does not exist (NoSuchBucket)` };
  }
  if (error.status === 403 && error.code === "AccessDenied") {
    return {
      ok: false,
      line: `${name}: AccessDenied: grant s3:GetObject on arn:aws:s3:::${bucket}/* ` +
        "(without s3:ListBucket S3 also answers a missing key with 403, so this may be that)",
    };
  }
  return { ok: false, line: `${name}: ${error.message}` };
}

export async function probeS3(
  config: Config,
  env: Record<string, string | undefined>,
  deps: CliDeps,
  bucket: string,
): Promise<ProbeResult> {
  if (!config.payloads.s3) {
    return { ok: false, line: `S3 bucket ${bucket}: S3_PAYLOADS=off, so no payload is fetched` };
  }
  const s3 = createS3Client(config, {
    env,
    readTextFile: deps.readTextFile,
    homeDir: deps.homeDir,
    clock: deps.clock,
    fetch: deps.fetch,
  });
  try {
    await s3.getObject({ bucket, key: PROBE_KEY, maxBytes: 1024, signal: deps.signal });
    return s3ProbeVerdict(bucket, undefined);
  } catch (error) {
    return s3ProbeVerdict(bucket, error);
  }
}
