import assert from "node:assert/strict";
import {
  categorizeStatus,
  categoryOf,
  CircuitOpenError,
  ConfigError,
  type ErrorCategory,
  HttpError,
  isLocalError,
  isRetriable,
  LocalError,
  RedirectError,
  SluiceError,
  SqsError,
  TimeoutError,
} from "../../src/lib/errors.ts";

// [what, error, categoryOf, isRetriable, isLocalError]
const ROWS: Array<[string, unknown, ErrorCategory, boolean, boolean]> = [
  ["HttpError 503", new HttpError("validator", 503, ""), "TRANSIENT", true, false],
  ["HttpError 429", new HttpError("validator", 429, ""), "TRANSIENT", true, false],
  ["HttpError 404", new HttpError("enrichment", 404, ""), "UNKNOWN_USER", false, false],
  ["HttpError 400", new HttpError("validator", 400, ""), "PERMANENT", false, false],
  [
    "HttpError with an explicit category",
    new HttpError("validator", 422, "", { category: "REJECTED" }),
    "REJECTED",
    false,
    false,
  ],
  ["RedirectError", new RedirectError("validator", 302, "http://x/"), "TRANSIENT", true, false],
  ["LocalError", new LocalError("bad id"), "PERMANENT", false, true],
  ["TimeoutError (ours)", new TimeoutError("validator", 100), "TIMEOUT", true, false],
  ["CircuitOpenError", new CircuitOpenError("validator", 50), "TRANSIENT", true, false],
  [
    "SqsError 500",
    new SqsError("ReceiveMessage", "InternalError", 500, ""),
    "TRANSIENT",
    true,
    false,
  ],
  [
    "SqsError 0 (transport)",
    new SqsError("ReceiveMessage", "NetworkError", 0, ""),
    "TRANSIENT",
    true,
    false,
  ],
  [
    "SqsError 400",
    new SqsError("SendMessage", "InvalidParameterValue", 400, ""),
    "PERMANENT",
    false,
    false,
  ],
  [
    "SqsError 500 marked not retriable",
    new SqsError("DeleteMessage", "InternalError", 500, "", { retriable: false }),
    "PERMANENT",
    false,
    false,
  ],
  [
    "ConfigError",
    new ConfigError("SQS_MAX_BATCH", "Cannot parse SQS_MAX_BATCH"),
    "PERMANENT",
    false,
    false,
  ],
  ["SluiceError (the base)", new SluiceError("x", "VALIDATION"), "VALIDATION", false, false],
  // Foreign errors: engine errors arise in our own code (local, PERMANENT); anything else is transient.
  ["foreign TypeError", new TypeError("x is not a function"), "PERMANENT", false, true],
  ["foreign URIError", new URIError("URI malformed"), "PERMANENT", false, true],
  ["foreign RangeError", new RangeError("out of range"), "PERMANENT", false, true],
  ["foreign ReferenceError", new ReferenceError("y"), "PERMANENT", false, true],
  ["foreign SyntaxError", new SyntaxError("bad JSON"), "PERMANENT", false, true],
  ["foreign EvalError", new EvalError("e"), "PERMANENT", false, true],
  [
    "foreign DOMException TimeoutError",
    new DOMException("t", "TimeoutError"),
    "TIMEOUT",
    true,
    false,
  ],
  [
    "foreign DOMException AbortError",
    new DOMException("a", "AbortError"),
    "TRANSIENT",
    true,
    false,
  ],
  ["foreign plain Error", new Error("connection reset"), "TRANSIENT", true, false],
  ["a thrown string", "boom", "TRANSIENT", true, false],
  // Duck typing is gone: a foreign error with a `category` field is still foreign.
  [
    "foreign Error with a category field",
    Object.assign(new Error("x"), { category: "PERMANENT" }),
    "TRANSIENT",
    true,
    false,
  ],
  [
    "foreign TypeError with a category field",
    Object.assign(new TypeError("x"), { category: "TRANSIENT" }),
    "PERMANENT",
    false,
    true,
  ],
];

for (const [what, error, category, retriable, local] of ROWS) {
  Deno.test(`errors: ${what} is ${category}, retriable ${retriable}, local ${local}`, () => {
    assert.equal(categoryOf(error), category);
    assert.equal(isRetriable(error), retriable);
    assert.equal(isLocalError(error), local);
  });
}

Deno.test("errors: every sluice error class extends SluiceError and keeps its cause", () => {
  const cause = new Error("root");
  const errors = [
    new HttpError("validator", 500, "", { cause }),
    new LocalError("x", { cause }),
    new TimeoutError("validator", 10, { cause }),
    new SqsError("ReceiveMessage", "InternalError", 500, "", { cause }),
    new SluiceError("x", "TRANSIENT", { cause }),
  ];
  for (const error of errors) {
    assert.ok(error instanceof SluiceError, error.name);
    assert.equal(error.cause, cause, error.name);
  }
  assert.ok(new RedirectError("validator", 301, "") instanceof SluiceError);
  assert.ok(new CircuitOpenError("validator", 1) instanceof SluiceError);
  assert.ok(new ConfigError("X", "m") instanceof SluiceError);
});

Deno.test("errors: categorizeStatus maps statuses row by row", () => {
  const rows: Array<[number, ErrorCategory]> = [
    [400, "PERMANENT"],
    [401, "PERMANENT"],
    [404, "UNKNOWN_USER"],
    [408, "TRANSIENT"],
    [409, "PERMANENT"],
    [425, "TRANSIENT"],
    [429, "TRANSIENT"],
    [500, "TRANSIENT"],
    [503, "TRANSIENT"],
  ];
  for (const [status, category] of rows) {
    assert.equal(categorizeStatus(status), category, `${status}`);
  }
});
