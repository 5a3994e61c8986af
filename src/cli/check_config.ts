/**
 * `sluice check-config [--probe] [--env-file PATH] [--json]`: every configuration problem at
 * once, warnings for variables that look like sluice's, the values the worker would use, and
 * with --probe what each endpoint really is.
 */
import { collectConfigProblems, type Config, CONFIG_VARS } from "../app/config.ts";
import { createSqsClient } from "../app/aws_clients.ts";
import { parseIni } from "../adapters/aws_credentials.ts";
import { regionFromQueueUrl } from "../adapters/sqs_client.ts";
import type { CliDeps } from "./cli_deps.ts";
import { describeSqsFailure, parseRedrivePolicy } from "./dlq_session.ts";
import { readEnv } from "./env_file.ts";
import { lintEnvNames } from "../app/env_lint.ts";
import { regionMismatch } from "../app/region_check.ts";
import { enrichVerdict, identify, type ProbeResult, validatorVerdict } from "./probe_http.ts";
import { probeTable } from "../app/idempotency_wiring.ts";
import { probeS3 } from "./probe_s3.ts";

export interface CheckConfigCommand {
  probe: boolean;
  envFile: string | undefined;
  json: boolean;
  /** --s3-bucket: with --probe, S3 payloads are checked on this bucket. */
  s3Bucket?: string | undefined;
}

export async function checkConfig(cmd: CheckConfigCommand, deps: CliDeps): Promise<number> {
  const env = await readEnv(cmd.envFile, deps);
  if (typeof env === "number") return env;
  const { config, problems } = collectConfigProblems(env);
  const warnings = lintEnvNames(env, CONFIG_VARS.map((v) => v.name));
  const mismatch = config && regionMismatch(config.region, config.queueUrl, env);
  if (mismatch) warnings.push(mismatch);
  const resolved = config ? await resolvedValues(config, env, deps) : {};
  const probes = config && cmd.probe ? await probeAll(config, env, deps, mismatch) : [];
  if (config && cmd.probe && cmd.s3Bucket) {
    probes.push(await probeS3(config, env, deps, cmd.s3Bucket));
  }
  if (cmd.json) {
    deps.out(JSON.stringify({
      ok: problems.length === 0 && probes.every((p) => p.ok),
      ...(cmd.envFile ? { env_file: cmd.envFile } : {}),
      problems,
      warnings,
      resolved: Object.fromEntries(Object.entries(resolved).map(([k, v]) => [jsonKey(k), v])),
      probes,
    }));
  } else {
    if (cmd.envFile) {
      deps.out(`variables from ${cmd.envFile} only, as systemd gives them to the worker`);
    }
    for (const p of problems) deps.out(`FAIL ${p}`);
    for (const w of warnings) deps.out(`warn ${w}`);
    if (config) deps.out("ok   configuration");
    const width = Math.max(0, ...Object.keys(resolved).map((k) => k.length));
    for (const [k, v] of Object.entries(resolved)) deps.out(`     ${k.padEnd(width)}  ${v}`);
    for (const p of probes) deps.out(`${p.ok ? "ok  " : "FAIL"} ${p.line}`);
  }
  if (problems.length > 0) return 2;
  return probes.every((p) => p.ok) ? 0 : 1;
}

/** The values the worker would use, and where the less obvious ones come from. */
async function resolvedValues(
  config: Config,
  env: Record<string, string | undefined>,
  deps: CliDeps,
): Promise<Record<string, string>> {
  const regionSource = env.AWS_REGION
    ? "AWS_REGION"
    : env.AWS_DEFAULT_REGION
    ? "AWS_DEFAULT_REGION"
    : regionFromQueueUrl(config.queueUrl)
    ? "the queue URL"
    : "?";
  return {
    queue: config.queueUrl,
    region: `${config.region} (from ${regionSource})`,
    "SQS endpoint": config.endpoint ?? `${new URL(config.queueUrl).origin} (the queue URL's)`,
    dlq: config.dlqQueueUrl
      ? `${config.dlqQueueUrl} (DLQ_QUEUE_URL)`
      : "the target of the queue's RedrivePolicy (read at startup; --probe reads it now)",
    credentials: await credentialSource(env, deps),
    "enrichment API": config.enrichUrl,
    validator: config.validatorUrl,
    "health server": `http://${config.httpHost}:${config.httpPort}/healthz and /metrics`,
    policies:
      `UNKNOWN_USER_POLICY=${config.unknownUserPolicy}, DELETE_ON_4XX=${config.deleteOn4xx}, ` +
      `DELETE_ON_5XX=${config.deleteOn5xx}`,
    log: `${config.logLevel}, ${config.logFormat}`,
    traces: tracesLine(config),
  };
}

/** A label of the text output as a JSON key: "SQS endpoint" → "sqs_endpoint". */
function jsonKey(label: string): string {
  return label.toLowerCase().replace(/[^a-z0-9]+/g, "_");
}

/** Where spans go (the URL without its query: a token may sit there), and the sampler. */
function tracesLine(config: Config): string {
  const { tracesUrl, protocol, sampler, samplerRatio } = config.trace;
  const sampling = sampler.endsWith("traceidratio") ? `${sampler} ${samplerRatio}` : sampler;
  if (tracesUrl === undefined) return `propagated, not exported; ${sampling}`;
  const url = new URL(tracesUrl);
  return `exported to ${url.origin}${url.pathname} (${protocol}); ${sampling}`;
}

/** Which source of the credential chain would answer, found without a network call. */
async function credentialSource(
  env: Record<string, string | undefined>,
  deps: CliDeps,
): Promise<string> {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    return `environment (AWS_ACCESS_KEY_ID${env.AWS_SESSION_TOKEN ? ", AWS_SESSION_TOKEN" : ""})`;
  }
  const file = env.AWS_SHARED_CREDENTIALS_FILE ||
    (deps.homeDir ? `${deps.homeDir}/.aws/credentials` : undefined);
  const profile = env.AWS_PROFILE || "default";
  if (file) {
    try {
      const section = parseIni(await deps.readTextFile(file)).get(profile);
      if (section?.get("aws_access_key_id")) {
        return `shared credentials file ${file}, profile ${profile}`;
      }
    } catch {
      // No file: the chain goes on to the instance role.
    }
  }
  const imds = env.AWS_EC2_METADATA_SERVICE_ENDPOINT || "http://169.254.169.254";
  return `EC2 instance role through IMDSv2 at ${imds} (no keys in the environment, no profile ` +
    `${profile} in ${file ?? "a shared credentials file"})`;
}

async function probeAll(
  config: Config,
  env: Record<string, string | undefined>,
  deps: CliDeps,
  mismatch: string | undefined,
): Promise<ProbeResult[]> {
  // SQS's answer never mentions the region: a failing SQS line says what is wrong.
  const results = (await probeSqs(config, env, deps)).map((r) =>
    r.ok || !mismatch ? r : { ok: false, line: `${r.line}; ${mismatch}` }
  );
  const timeout = Math.min(config.httpTimeoutMs, 10_000);
  const enrich = await identify(deps.fetch, config.enrichUrl, timeout);
  const validatorBase = config.validatorUrl.replace(/\/ingest$/, "");
  const validator = await identify(deps.fetch, validatorBase, timeout);
  results.push(enrichVerdict(config.enrichUrl, enrich, validator));
  results.push(validatorVerdict(config.validatorUrl, validator, enrich));
  const tables = [
    ["IDEMPOTENCY_TABLE", config.idempotencyTable],
    ["RATE_LIMIT_TABLE", config.rateLimitTable],
  ] as const;
  const awsDeps = {
    env,
    readTextFile: deps.readTextFile,
    homeDir: deps.homeDir,
    clock: deps.clock,
  };
  for (const [variable, name] of tables) {
    if (!name) continue;
    const problems = await probeTable(config, awsDeps, variable, name, deps.signal).catch((
      error,
    ) => [`cannot describe it: ${(error as Error).message}`]);
    results.push(
      problems.length === 0
        ? { ok: true, line: `${variable}: ${name} (exists, key id, ACTIVE)` }
        : { ok: false, line: problems.join("; ") },
    );
  }
  return results;
}

/** GetQueueAttributes on the queue and on its DLQ. */
async function probeSqs(
  config: Config,
  env: Record<string, string | undefined>,
  deps: CliDeps,
): Promise<ProbeResult[]> {
  const sqs = createSqsClient(config, {
    env,
    readTextFile: deps.readTextFile,
    homeDir: deps.homeDir,
    clock: deps.clock,
  });
  const signal = deps.signal;
  let policyRaw: string | undefined;
  try {
    const a = await sqs.getQueueAttributes(config.queueUrl, [
      "RedrivePolicy",
      "ApproximateNumberOfMessages",
    ], signal);
    policyRaw = a.RedrivePolicy;
    const line = `SQS queue: ${config.queueUrl} (${a.ApproximateNumberOfMessages ?? "?"} visible)`;
    const results: ProbeResult[] = [{ ok: true, line }];
    const policy = parseRedrivePolicy(policyRaw);
    let dlq = config.dlqQueueUrl;
    let how = "DLQ_QUEUE_URL";
    if (!dlq && policy) {
      dlq = await sqs.getQueueUrl(policy.name, policy.account, signal);
      how = `the queue's RedrivePolicy, maxReceiveCount ${policy.maxReceiveCount ?? "?"}`;
    }
    if (!dlq) {
      results.push({
        ok: false,
        line: "no dead-letter queue: no RedrivePolicy and no DLQ_QUEUE_URL",
      });
      return results;
    }
    try {
      const d = await sqs.getQueueAttributes(dlq, ["ApproximateNumberOfMessages"], signal);
      results.push({
        ok: true,
        line: `SQS DLQ: ${dlq} (from ${how}; ${d.ApproximateNumberOfMessages ?? "?"} visible)`,
      });
    } catch (error) {
      results.push({
        ok: false,
        line: `DLQ: ${describeSqsFailure(error, "GetQueueAttributes", dlq)}`,
      });
    }
    return results;
  } catch (error) {
    return [{ ok: false, line: describeSqsFailure(error, "GetQueueAttributes", config.queueUrl) }];
  }
}
