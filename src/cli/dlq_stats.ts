/** `sluice dlq stats`: the DLQ, how it was found, and how many messages it holds. */
import type { DlqCommon } from "./cli_args.ts";
import type { CliDeps } from "./cli_deps.ts";
import { describeSqsFailure, openDlq, queueDepth } from "./dlq_session.ts";

export async function dlqStats(cmd: DlqCommon, deps: CliDeps): Promise<number> {
  const session = await openDlq(deps, { strict: false, allowAnyDlq: cmd.allowAnyDlq });
  if (typeof session === "number") return session;
  let depth;
  try {
    depth = await queueDepth(session, session.dlqUrl, deps);
  } catch (error) {
    deps.err(`sluice: ${describeSqsFailure(error, "GetQueueAttributes", session.dlqUrl)}`);
    return 1;
  }
  if (cmd.output === "json") {
    deps.out(JSON.stringify({
      dlq: session.dlqUrl,
      found_by: session.dlqSource,
      visible: depth.visible,
      in_flight: depth.inFlight,
      delayed: depth.delayed,
      max_receive_count: session.maxReceiveCount ?? null,
    }));
    return 0;
  }
  deps.out(`dlq               ${session.dlqUrl}`);
  deps.out(`found by          ${session.dlqSource}`);
  deps.out(`visible           ${depth.visible}`);
  deps.out(`in flight         ${depth.inFlight}`);
  deps.out(`delayed           ${depth.delayed}`);
  deps.out(`max receive count ${session.maxReceiveCount ?? "none"}`);
  return 0;
}
