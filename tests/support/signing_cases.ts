/** Requests signed under both runtimes: Bun's native hasher must sign them as @noble/hashes does. */
import type { SignRequest } from "../../src/adapters/sigv4.ts";

const keys = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};

export const SIGNING_CASES: SignRequest[] = [
  {
    url: "https://sqs.eu-west-1.amazonaws.com/",
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": "AmazonSQS.ReceiveMessage",
    },
    body:
      '{"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/123456789012/work","MaxNumberOfMessages":10}',
    keys,
    region: "eu-west-1",
    service: "sqs",
    amzDate: "20261208T030000Z",
  },
  {
    url: "http://127.0.0.1:4566/",
    headers: {
      "Content-Type": "application/x-amz-json-1.0",
      "X-Amz-Target": "AmazonSQS.DeleteMessageBatch",
    },
    body: JSON.stringify({
      Entries: Array.from(
        { length: 10 },
        (_, i) => ({ Id: `${i}`, ReceiptHandle: `AQEB${"ü".repeat(40)}${i}` }),
      ),
    }),
    keys: { ...keys, sessionToken: "IQoJb3JpZ2luX2VjEXAMPLE" },
    region: "us-east-1",
    service: "sqs",
    amzDate: "20261208T235959Z",
  },
  {
    url: "https://dynamodb.us-east-1.amazonaws.com/",
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": "DynamoDB_20120810.PutItem",
    },
    body: "",
    keys,
    region: "us-east-1",
    service: "dynamodb",
    amzDate: "20261209T000000Z",
  },
];
