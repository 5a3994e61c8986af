/**
 * The sampling decision of `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, as the OpenTelemetry
 * specification defines the built-in samplers. Pure: a trace id and the parent's flag in, a
 * yes or no out.
 */

export const SAMPLER_NAMES = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;

export type SamplerName = typeof SAMPLER_NAMES[number];

/**
 * Whether a span in trace `traceId` is sampled; `parentSampled` is the incoming context's flag
 * (undefined: no parent, or one that left the decision open).
 */
export type Sampler = (traceId: string, parentSampled: boolean | undefined) => boolean;

/** 2^56: the ratio compares the trace id's low 56 bits, its random part in W3C Trace Context. */
const LOW_BITS = 2 ** 56;

/**
 * The sampler named; `ratio` (the sampler argument, 0-1, default 1) for the `traceidratio`
 * ones. A parent-based sampler follows a parent's decision and asks its root sampler otherwise.
 */
export function createSampler(name: SamplerName, ratio = 1): Sampler {
  const threshold = Math.max(0, Math.min(1, ratio)) * LOW_BITS;
  // Decided once here, not per message: each sampler is one small closure.
  const always = name.endsWith("always_on") || (name.endsWith("traceidratio") && ratio >= 1);
  const never = name.endsWith("always_off") || (name.endsWith("traceidratio") && !(ratio > 0));
  // 56 bits are past a double's precision: the ends are decided without rounding.
  const root = always
    ? () => true
    : never
    ? () => false
    : (traceId: string) => parseInt(traceId.slice(18), 16) < threshold;
  if (!name.startsWith("parentbased_")) return (traceId) => root(traceId);
  return (traceId, parentSampled) => parentSampled ?? root(traceId);
}
