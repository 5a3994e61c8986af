/** `sluice dlq peek [N]`: shows dead-lettered messages; they stay in the DLQ. */
import type { SqsMessage } from "../adapters/sqs_client.ts";
import type { DlqCommon, DlqFilter } from "./cli_args.ts";
import type { CliDeps } from "./cli_deps.ts";
import { scanDlq } from "./dlq_scan.ts";
import { categoryOf } from "./dlq_select.ts";
import { describeSqsFailure, openDlq } from "./dlq_session.ts";

/** One message as the dlq subcommands show it. */
export function messageRow(m: SqsMessage, nowMs: number, withBody: boolean) {
  const sent = Number(m.attributes.SentTimestamp);
  return {
    sqs_message_id: m.messageId,
    category: categoryOf(m),
    reason: m.messageAttributes.sluice_reason?.StringValue ?? null,
    age_seconds: Number.isFinite(sent) ? Math.max(0, Math.round((nowMs - sent) / 1000)) : null,
    receive_count: Number(m.attributes.ApproximateReceiveCount) || null,
    source_arn: m.attributes.DeadLetterQueueSourceArn || null,
    ...(withBody ? { body: m.body.length > 500 ? `${m.body.slice(0, 500)}…` : m.body } : {}),
  };
}

/** The text form: id, category, age and reason on one line. */
export function messageLine(row: ReturnType<typeof messageRow>): string {
  const age = row.age_seconds === null ? "?" : `${row.age_seconds}s`;
  return `${row.sqs_message_id}  ${row.category}  age ${age}  ${row.reason ?? ""}`.trimEnd();
}

export async function dlqPeek(
  cmd: DlqCommon & { count: number; filter: DlqFilter },
  deps: CliDeps,
): Promise<number> {
  const session = await openDlq(deps, { strict: false, allowAnyDlq: cmd.allowAnyDlq });
  if (typeof session === "number") return session;
  const rows: Array<ReturnType<typeof messageRow>> = [];
  try {
    await scanDlq({
      session,
      deps,
      filter: cmd.filter,
      limit: cmd.count,
      batchSize: 10,
      onBatch: (batch) => {
        for (const m of batch) {
          const row = messageRow(m, deps.clock.now(), true);
          rows.push(row);
          if (cmd.output === "text") {
            deps.out(messageLine(row));
            deps.out(`  ${row.body}`);
          }
        }
        return Promise.resolve({ release: batch, stop: false });
      },
    });
  } catch (error) {
    deps.err(`sluice: ${describeSqsFailure(error, "ReceiveMessage", session.dlqUrl)}`);
    return 1;
  }
  if (cmd.output === "json") deps.out(JSON.stringify({ dlq: session.dlqUrl, messages: rows }));
  else if (rows.length === 0) deps.out("no matching message in the dead-letter queue");
  return 0;
}
