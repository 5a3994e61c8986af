/**
 * Reading systemd's journal output (`journalctl -o short-unix`): how long the
 * unit's stop took, and whether journald dropped lines.
 */

/** Seconds from systemd's "Stopping sluice..." to its "Stopped sluice..." (the last pair), or undefined. */
export function stopSeconds(journal: string): number | undefined {
  let stopping: number | undefined;
  let seconds: number | undefined;
  for (const line of journal.split("\n")) {
    const m = line.match(/^(\d+\.\d+)\s+\S+\s+systemd\[1\]:\s+(Stopping|Stopped) sluice/);
    if (!m) continue;
    const t = Number(m[1]);
    if (m[2] === "Stopping") stopping = t;
    else if (stopping !== undefined) {
      seconds = t - stopping;
      stopping = undefined;
    }
  }
  return seconds;
}

/** journald's rate-limit notices ("Suppressed N messages from sluice.service"): their N, summed. */
export function suppressedMessages(journal: string): number {
  let total = 0;
  for (const m of journal.matchAll(/Suppressed (\d+) messages from /g)) total += Number(m[1]);
  return total;
}

/** systemd's "TimeoutStopUSec" value ("50s", "1min 30s", "infinity") in seconds. */
export function parseTimespan(value: string): number {
  if (value === "infinity") return Infinity;
  const units: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, min: 60, h: 3600 };
  let total = 0;
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)\s*(us|ms|min|s|h)/g)) {
    total += Number(m[1]) * units[m[2]!]!;
  }
  return total;
}

/** The worker's own count of messages in flight when it began to stop (its last "stopping" line). */
export function inFlightAtStop(journal: string): number | undefined {
  let found: number | undefined;
  for (const m of journal.matchAll(/"msg":"stopping[^"]*"[^\n]*?"in_flight":(\d+)/g)) {
    found = Number(m[1]);
  }
  return found;
}
