import assert from "node:assert/strict";
import { regionMismatch } from "../../src/app/region_check.ts";

const US = "https://sqs.us-east-1.amazonaws.com/123456789012/orders";

// [name, region, queue URL, env, the sentence or undefined]
const rows: Array<[string, string, string, Record<string, string>, string | undefined]> = [
  ["the same region", "us-east-1", US, { AWS_REGION: "us-east-1" }, undefined],
  ["a URL without a region (an emulator on 127.0.0.1)", "eu-west-1", "http://127.0.0.1:4566/0/q", {
    AWS_REGION: "eu-west-1",
  }, undefined],
  [
    "AWS_REGION against the queue URL's",
    "eu-west-1",
    US,
    { AWS_REGION: "eu-west-1" },
    "AWS_REGION=eu-west-1 does not match the queue URL's region us-east-1: SQS finds no such " +
    "queue in eu-west-1; set AWS_REGION=us-east-1",
  ],
  [
    "AWS_DEFAULT_REGION is named when it is the source",
    "eu-west-1",
    US,
    { AWS_DEFAULT_REGION: "eu-west-1" },
    "AWS_DEFAULT_REGION=eu-west-1 does not match the queue URL's region us-east-1: SQS finds no " +
    "such queue in eu-west-1; set AWS_DEFAULT_REGION=us-east-1",
  ],
];

for (const [name, region, url, env, want] of rows) {
  Deno.test(`region check: ${name}`, () => {
    assert.equal(regionMismatch(region, url, env), want);
  });
}
