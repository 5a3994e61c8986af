/**
 * SNS envelopes and S3 payloads wired for the pipeline (docs/payloads.md): the S3 client on the
 * shared credential chain, behind its breaker (an answer about the object is S3 working, not
 * failing), and the byte budget of fetched payloads.
 */
import type { CircuitBreaker } from "../lib/circuit_breaker.ts";
import { ByteBudget } from "../lib/byte_budget.ts";
import { payloadProblem, Payloads, type PayloadServices } from "../flow/payloads.ts";
import { type AwsDeps, createS3Client } from "./aws_clients.ts";
import type { Config } from "./config.ts";

/** The pipeline's payloads port, or undefined when SNS_ENVELOPE and S3_PAYLOADS are both off. */
export function wirePayloads(
  config: Config,
  aws: AwsDeps,
  breaker: CircuitBreaker | undefined,
  services: PayloadServices,
): Payloads | undefined {
  const settings = config.payloads;
  if (!settings.sns && !settings.s3) return undefined;
  const s3 = settings.s3 && breaker ? createS3Client(config, aws) : undefined;
  const isFailure = (error: unknown) => payloadProblem(error, settings.maxBytes) === undefined;
  return new Payloads(settings, {
    getObject: (bucket, key, maxBytes, signal) => {
      if (!s3 || !breaker) throw new Error("S3_PAYLOADS=off: no object is fetched");
      return breaker.run(() => s3.getObject({ bucket, key, maxBytes, signal }), isFailure);
    },
    deleteObject: async (bucket, key) => await s3?.deleteObject(bucket, key),
    budget: new ByteBudget(settings.budgetBytes),
  }, services);
}
