#!/usr/bin/env bash
# The quiet users' latency beside three hot users under RATE_LIMIT=20/1s, against the same quiet
# traffic alone (--without-hot), in alternating rounds of one run (docs/rate-limits.md). Prints one
# line per lab: the quiet p50/p99, the worst one-second window, the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
for round in $(seq 1 "$rounds"); do
  for mode in hot alone; do
    extra=()
    if [ "$mode" = alone ]; then extra=(--without-hot); fi
    out=$(timeout 300 deno task lab --messages 2000 --rate 200 --rate-limit 20/1s \
      --hot-users 3 --hot-share 0.5 "${extra[@]}" 2>&1) || true
    pick() { grep -E "$1" <<<"$out" | sed 's/  */ /g' | tr '\n' ' '; }
    echo "round $round $mode: $(pick 'quiet users')| $(pick 'worst 1000')| $(pick '^  (lost|result)')"
  done
done
