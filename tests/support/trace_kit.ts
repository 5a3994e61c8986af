/** Trace contexts for tests that need one but look at something else. */
import { Traced } from "../../src/lib/tracer.ts";

/** A context that records nothing, with fixed ids. */
export function untraced(): Traced {
  return new Traced("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", undefined);
}
