/**
 * Text a producer, a broken endpoint or a hostile downstream can put in what sluice prints, and
 * the check that none of it reaches a terminal raw.
 */
import assert from "node:assert/strict";

/**
 * C0 controls (LF, CR, tab, ESC, BEL, NUL), whole ESC sequences (CSI, OSC), DEL, C1 controls
 * (U+009B is a one-character CSI, U+0085 a line break), bidirectional controls and marks, a line
 * separator and a lone surrogate.
 */
export const HOSTILE = "nl\n cr\r tab\t esc\u001b[2J osc\u001b]0;owned\u0007 nul\u0000 " +
  "bel\u0007 del\u007f csi\u009b31m nel\u0085 rlo\u202e lri\u2066 pdi\u2069 lrm\u200e " +
  "alm\u061c ls\u2028 lone\ud800 end";

/** What must never reach a terminal raw (the same set for every sink). */
export const RAW_UNSAFE =
  // deno-lint-ignore no-control-regex -- the test looks for raw control characters
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** No line holds a raw unsafe character (a line break inside one included); some line exists. */
export function assertInert(what: string, lines: readonly string[]): void {
  assert.ok(lines.length > 0, `${what}: nothing written`);
  for (const line of lines) {
    const found = line.match(RAW_UNSAFE);
    assert.equal(
      found,
      null,
      `${what}: raw U+${found?.[0]?.charCodeAt(0).toString(16)} in ${JSON.stringify(line)}`,
    );
  }
}

const str = (value: string) => ({ DataType: "String", StringValue: value });

/**
 * A ReceiveMessage answer (for the fake SQS's `respond`) with one DLQ message whose every printed
 * part is hostile: id, body, category, reason and, `withSource`, its DeadLetterQueueSourceArn.
 */
export function hostileReceive(withSource: boolean) {
  return {
    body: {
      Messages: [{
        MessageId: `id-${HOSTILE}`,
        ReceiptHandle: "rh-hostile",
        Body: `{"message_id":"${HOSTILE}"} ${HOSTILE}`,
        Attributes: {
          SentTimestamp: String(Date.now()),
          ApproximateReceiveCount: "1",
          ...(withSource ? { DeadLetterQueueSourceArn: `arn:${HOSTILE}` } : {}),
        },
        MessageAttributes: {
          sluice_error: str(`VALIDATION${HOSTILE}`),
          sluice_reason: str(HOSTILE),
        },
      }],
    },
  };
}
