/**
 * The lab's rate-limit figures (docs/rate-limits.md): the most submissions any key had in one
 * sliding window, from the validator's arrival times, and the latency of the quiet keys beside
 * the hot ones. Pure.
 */
/** One submission the validator saw: whose, and when it arrived (ms). */
export interface KeyedSubmission {
  key: string;
  at: number;
}

export interface KeyWindowFigures {
  windowMs: number;
  /** the worst key's submissions in its busiest window */
  worst: number;
  /** the three busiest keys, busiest first */
  worstKeys: Array<{ key: string; submissions: number }>;
}

/** The most submissions of one key in any half-open window `[t, t + windowMs)`, per key. */
export function worstWindows(
  submissions: readonly KeyedSubmission[],
  windowMs: number,
): KeyWindowFigures {
  const byKey = new Map<string, number[]>();
  for (const { key, at } of submissions) {
    const times = byKey.get(key);
    if (times) times.push(at);
    else byKey.set(key, [at]);
  }
  const worstKeys: Array<{ key: string; submissions: number }> = [];
  for (const [key, times] of byKey) {
    times.sort((a, b) => a - b);
    let most = 0;
    for (let start = 0, end = 0; end < times.length; end++) {
      while (times[end]! - times[start]! >= windowMs) start++;
      most = Math.max(most, end - start + 1);
    }
    worstKeys.push({ key, submissions: most });
  }
  worstKeys.sort((a, b) => b.submissions - a.submissions || a.key.localeCompare(b.key));
  return { windowMs, worst: worstKeys[0]?.submissions ?? 0, worstKeys: worstKeys.slice(0, 3) };
}

/** Receive→accept latencies split into the hot keys' and the others', each sorted. */
export function splitLatencies(
  latencies: ReadonlyArray<{ key: string; ms: number }>,
  hot: ReadonlySet<string>,
): { quiet: number[]; hot: number[] } {
  const of = (isHot: boolean) =>
    latencies.filter((l) => hot.has(l.key) === isHot).map((l) => l.ms).sort((a, b) => a - b);
  return { quiet: of(false), hot: of(true) };
}
