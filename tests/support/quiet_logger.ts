/** A logger that writes nothing, for tests that do not read the log. */
import { createLogger, type Logger } from "../../src/lib/logger.ts";
import { FakeClock } from "./fake_clock.ts";

export const QUIET_LOGGER: Logger = createLogger({
  level: "error",
  write: () => {},
  clock: new FakeClock({ start: 0 }),
});
