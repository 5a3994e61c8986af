/**
 * A signing region that is not the queue URL's: SQS then answers every request with an error
 * that never mentions the region (QueueDoesNotExist, or a credential scoped to the wrong
 * region), so check-config, the probe, the startup log and /readyz name it. Pure.
 */
import { regionFromQueueUrl } from "../adapters/sqs_client.ts";

/** The mismatch in one sentence with what to set, or undefined when the regions agree. */
export function regionMismatch(
  region: string,
  queueUrl: string,
  env: Record<string, string | undefined>,
): string | undefined {
  const urlRegion = regionFromQueueUrl(queueUrl);
  if (!urlRegion || urlRegion === region) return undefined;
  const from = env.AWS_REGION ? "AWS_REGION" : env.AWS_DEFAULT_REGION ? "AWS_DEFAULT_REGION" : "";
  const name = from ? `${from}=${region}` : `the region ${region}`;
  return `${name} does not match the queue URL's region ${urlRegion}: SQS finds no such queue ` +
    `in ${region}; set ${from || "AWS_REGION"}=${urlRegion}`;
}
