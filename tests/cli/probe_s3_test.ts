import assert from "node:assert/strict";
import { createSnsS3Admin } from "../../lab/sns_s3_admin.ts";
import { S3Error } from "../../src/adapters/s3_client.ts";
import { s3ProbeVerdict } from "../../src/cli/probe_s3.ts";
import { sluiceInProcess } from "../support/cli_in_process.ts";
import { startEnrichFake, startValidatorFake } from "../support/fault_kit.ts";
import { startLabEnv } from "../support/lab_env.ts";

const s3Error = (status: number, code: string) =>
  new S3Error("b", "k", "GetObject", code, status, "m");

Deno.test("probe s3: what each answer to a GetObject of a missing key says", () => {
  const rows: Array<[unknown, boolean, RegExp]> = [
    [undefined, true, /^S3 bucket b: readable/],
    [s3Error(404, "NoSuchKey"), true, /^S3 bucket b: readable \(s3:GetObject allowed/],
    [s3Error(404, "NoSuchBucket"), false, /^S3 bucket b: does not exist \(NoSuchBucket\)$/],
    [s3Error(403, "AccessDenied"), false, /grant s3:GetObject on arn:aws:s3:::b\/\*/],
    [s3Error(0, "NetworkError"), false, /^S3 bucket b: S3 GetObject got no answer/],
  ];
  for (const [error, ok, line] of rows) {
    const verdict = s3ProbeVerdict("b", error);
    assert.equal(verdict.ok, ok, verdict.line);
    assert.match(verdict.line, line);
  }
});

Deno.test("probe s3: check-config --probe --s3-bucket reads the bucket as the worker would", async () => {
  const lab = await startLabEnv();
  const enrich = startEnrichFake();
  const validator = startValidatorFake();
  try {
    await createSnsS3Admin(lab.endpoint).createBucket("payloads");
    const env = lab.env(
      { enrich: enrich.url, validator: validator.url },
      { AWS_ENDPOINT_URL_S3: lab.endpoint },
    );
    const probe = async (bucket: string) => {
      const run = await sluiceInProcess(
        ["check-config", "--probe", "--s3-bucket", bucket, "--json"],
        env,
      );
      const probes = JSON.parse(run.stdout).probes as Array<{ ok: boolean; line: string }>;
      return { code: run.code, s3: probes.find((p) => p.line.startsWith("S3 bucket")) };
    };
    const good = await probe("payloads");
    assert.equal(good.s3?.ok, true, good.s3?.line);
    const missing = await probe("no-such-bucket");
    assert.deepEqual(missing.s3, {
      ok: false,
      line: "S3 bucket no-such-bucket: does not exist (NoSuchBucket)",
    });
    assert.equal(missing.code, 1);
  } finally {
    await enrich.close();
    await validator.close();
    await lab.close();
  }
});
