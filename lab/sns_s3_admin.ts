/**
 * Unsigned SNS (query protocol) and S3 (path-style REST) calls for the lab's own use against
 * fauxqs, which serves both on the SQS endpoint: a topic with an SQS subscription (so messages
 * arrive in the real SNS envelope), and buckets and objects for extended-client pointers.
 */

export interface SnsS3Admin {
  createBucket(bucket: string): Promise<void>;
  putObject(bucket: string, key: string, body: string): Promise<void>;
  /** The topic's ARN. */
  createTopic(name: string): Promise<string>;
  /** Subscribes the queue (by ARN) to the topic; `raw` turns on raw message delivery. */
  subscribeQueue(topicArn: string, queueArn: string, raw?: boolean): Promise<void>;
  /** Publishes with String message attributes. */
  publish(topicArn: string, message: string, attributes?: Record<string, string>): Promise<void>;
}

/** The message attribute the extended clients add to a pointer, as a String attribute map. */
export function extendedSizeAttribute(bytes: number, legacy = false): Record<string, string> {
  return { [legacy ? "SQSLargePayloadSize" : "ExtendedPayloadSize"]: String(bytes) };
}

/** A pointer body as the extended clients write it: the current pair or the legacy object. */
export function pointerBody(bucket: string, key: string, legacy = false): string {
  const fields = { s3BucketName: bucket, s3Key: key };
  return JSON.stringify(
    legacy ? fields : ["software.amazon.payloadoffloading.PayloadS3Pointer", fields],
  );
}

export function createSnsS3Admin(endpoint: string, doFetch: typeof fetch = fetch): SnsS3Admin {
  const sns = async (params: Record<string, string>): Promise<string> => {
    const response = await doFetch(`${endpoint}/`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(params).toString(),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`SNS ${params.Action} failed: HTTP ${response.status} ${text}`);
    }
    return text;
  };
  const s3 = async (method: string, path: string, body?: string) => {
    const response = await doFetch(`${endpoint}${path}`, {
      method,
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`S3 ${method} ${path} failed: HTTP ${response.status} ${text}`);
    }
  };
  const path = (bucket: string, key: string) =>
    `/${encodeURIComponent(bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`;
  return {
    createBucket: (bucket) => s3("PUT", `/${encodeURIComponent(bucket)}`),
    putObject: (bucket, key, body) => s3("PUT", path(bucket, key), body),
    async createTopic(name) {
      const text = await sns({ Action: "CreateTopic", Name: name });
      const arn = /<TopicArn>([^<]+)<\/TopicArn>/.exec(text)?.[1];
      if (!arn) throw new Error(`SNS CreateTopic answered no TopicArn: ${text.slice(0, 200)}`);
      return arn;
    },
    async subscribeQueue(topicArn, queueArn, raw = false) {
      await sns({
        Action: "Subscribe",
        TopicArn: topicArn,
        Protocol: "sqs",
        Endpoint: queueArn,
        ...(raw
          ? { "Attributes.entry.1.key": "RawMessageDelivery", "Attributes.entry.1.value": "true" }
          : {}),
      });
    },
    async publish(topicArn, message, attributes = {}) {
      const params: Record<string, string> = {
        Action: "Publish",
        TopicArn: topicArn,
        Message: message,
      };
      Object.entries(attributes).forEach(([name, value], i) => {
        const at = `MessageAttributes.entry.${i + 1}`;
        params[`${at}.Name`] = name;
        params[`${at}.Value.DataType`] = /^\d+$/.test(value) ? "Number" : "String";
        params[`${at}.Value.StringValue`] = value;
      });
      await sns(params);
    },
  };
}
