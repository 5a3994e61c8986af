/** A logger that writes nothing, for tests that do not read the log. */
import { createLogger, type Logger } from "../../src/lib/logger.ts";

export const QUIET_LOGGER: Logger = createLogger({
  level: "error",
  write: () => {},
  clock: { now: () => 0 },
});
