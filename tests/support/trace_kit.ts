/** Trace contexts for tests that need one but look at something else. */
import { createSampler } from "../../src/lib/trace_sampler.ts";
import { type SpanData, Traced, Tracer } from "../../src/lib/tracer.ts";
import { FakeClock } from "./fake_clock.ts";

/** A context that records nothing, with fixed ids. */
export function untraced(): Traced {
  return new Traced("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", undefined);
}

/** A tracer that records every span (always on) into `added`, on a fake clock with real ids. */
export function recordingTracer(): { clock: FakeClock; added: SpanData[]; tracer: Tracer } {
  const clock = new FakeClock({ auto: false, random: Math.random });
  const added: SpanData[] = [];
  const tracer = new Tracer({
    sampler: createSampler("always_on"),
    clock,
    sink: { add: (span) => added.push(span) },
  });
  return { clock, added, tracer };
}
