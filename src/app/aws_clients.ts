/**
 * The AWS clients of a config, SQS, DynamoDB and S3, on one credential chain: environment,
 * shared credentials file, then the instance role (IMDSv2), whose answer both share; an
 * ExpiredToken answer to either makes the chain resolve again.
 */
import { type AwsCredentials, credentialChain } from "../adapters/aws_credentials.ts";
import { DynamoDbClient, dynamoDbEndpoint } from "../adapters/dynamodb_client.ts";
import { SqsClient } from "../adapters/sqs_client.ts";
import { S3Client } from "../adapters/s3_client.ts";
import type { Clock } from "../lib/clock.ts";
import type { Sha256 } from "../adapters/sigv4.ts";
import type { Config } from "./config.ts";

type CredentialChain = ReturnType<typeof credentialChain>;

/** What the credential chain and the clients need from the runtime. */
export interface AwsDeps {
  env: Record<string, string | undefined>;
  readTextFile?: (path: string) => Promise<string>;
  homeDir?: string | undefined;
  fetch?: typeof fetch;
  /** The hasher AWS requests are signed with; default @noble/hashes (adapters/sigv4.ts). */
  sha256?: Sha256;
  /** Signing dates, expiries, timeouts. */
  clock: Clock;
}

const chains = new WeakMap<AwsDeps, CredentialChain>();

/** One chain per deps object: the SQS and DynamoDB clients of a worker share its cache. */
function chainFor(deps: AwsDeps): CredentialChain {
  let chain = chains.get(deps);
  if (!chain) {
    chain = credentialChain({
      env: deps.env,
      ...(deps.readTextFile ? { readTextFile: deps.readTextFile } : {}),
      ...(deps.homeDir ? { homeDir: deps.homeDir } : {}),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
      clock: deps.clock,
    });
    chains.set(deps, chain);
  }
  return chain;
}

/** Called after each request with its action, result and duration. */
type OnRequest = (action: string, result: string, durationMs: number, detail?: string) => void;

/** What both clients take alike: the region, credentials from the shared chain, fetch, clock, hook. */
function commonOptions(config: Config, deps: AwsDeps, onRequest: OnRequest | undefined) {
  const credentials = chainFor(deps);
  return {
    region: config.region,
    credentials: () => credentials.get(),
    credentialsExpired: (used: AwsCredentials) => credentials.expired(used),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.sha256 ? { sha256: deps.sha256 } : {}),
    clock: deps.clock,
    ...(onRequest ? { onRequest } : {}),
  };
}

/**
 * The SQS client for a config: credentials from the chain, calls that name no
 * queue (GetQueueUrl for the DLQ) sent where the queue lives.
 */
export function createSqsClient(config: Config, deps: AwsDeps, onRequest?: OnRequest): SqsClient {
  return new SqsClient({
    ...commonOptions(config, deps, onRequest),
    endpoint: config.endpoint ?? new URL(config.queueUrl).origin,
    timeoutMs: Math.max(config.httpTimeoutMs, 10_000),
  });
}

/** The DynamoDB client for a config, on the same credential chain as SQS. */
export function createDynamoDbClient(
  config: Config,
  deps: AwsDeps,
  onRequest?: OnRequest,
): DynamoDbClient {
  return new DynamoDbClient({
    ...commonOptions(config, deps, onRequest),
    endpoint: config.dynamodbEndpoint ?? dynamoDbEndpoint({}, config.region),
    timeoutMs: config.httpTimeoutMs,
  });
}

/**
 * The S3 client of S3 payloads, on the same credential chain, region and timeouts as SQS: path-style
 * on AWS_ENDPOINT_URL_S3, virtual-hosted on AWS.
 */
export function createS3Client(config: Config, deps: AwsDeps, onRequest?: OnRequest): S3Client {
  return new S3Client({
    ...commonOptions(config, deps, onRequest),
    endpoint: config.payloads.s3Endpoint,
    timeoutMs: Math.max(config.httpTimeoutMs, 10_000),
  });
}
