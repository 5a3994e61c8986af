/**
 * The lab's options, its live progress and its summary: the types bench/, tests/ and vm/ use
 * (lab/lab.ts re-exports them).
 */
import type { Scenario } from "./scenario.ts";
import type { SigtermPhaseSummary } from "./sigterm_phase.ts";
import type { WorkerShare } from "./fleet.ts";
import type { DuplicateCauses } from "./duplicate_causes.ts";
import type { TableFault, TableProxyStats } from "./table_proxy.ts";
import type { TableMissingSummary } from "./table_missing.ts";
import type { KeyWindowFigures } from "./key_windows.ts";

/** A window of table faults (lab/table_proxy.ts) during the run, with `--table`. */
export interface TableFaultWindow extends TableFault {
  /** how long it lasts */
  seconds: number;
  /** it starts once this share of the valid messages is accepted (and the window before it ended) */
  atAccepted: number;
}

/** The table faults `--chaos` adds with `--table`: a short refusal, a throttling burst, a slow stretch. */
export const CHAOS_TABLE_FAULTS: readonly TableFaultWindow[] = [
  { kind: "refuse", refusal: "mix", seconds: 4, atAccepted: 0.15 },
  { kind: "throttle", share: 0.6, seconds: 6, atAccepted: 0.4 },
  { kind: "slow", slowMs: 8000, seconds: 6, atAccepted: 0.65 },
];

/** Chaos knobs (seed 004's failure-mode experiments). */
export interface ChaosOptions {
  /** probability per second of SIGKILLing the worker (it is restarted) */
  crashRate?: number;
  /** SIGKILL the worker once, after the proxy has seen this many messages received */
  crashAfterReceive?: number;
  /** every Nth enrichment request is delayed `slowSeconds` */
  slowEvery?: number;
  /** delay of those requests; longer than the 30 s visibility timeout by default (35) */
  slowSeconds?: number;
  /** the SQS proxy fails for this many seconds, once, when a quarter of the messages are accepted */
  sqsOutageSeconds?: number;
  /** every Nth first submission is answered with a redirect (never to be followed) */
  redirectEvery?: number;
  /** after the run, a SIGTERM phase (lab/sigterm_phase.ts) with this many messages; 0 = none */
  sigtermPhaseMessages?: number;
  /** the SIGTERM phase's worker uses a table whose every answer is this late, ms; 0 = no table */
  sigtermPhaseTableSlowMs?: number;
  /** the SIGTERM phase's validator delay while the SIGTERM lands, ms */
  sigtermPhaseValidatorMs?: number;
  /** the SIGTERM phase's first worker's VALIDATOR_CONCURRENCY */
  sigtermPhaseValidatorConcurrency?: number;
  /** table fault windows, in order (with a table only) */
  tableFaults?: readonly TableFaultWindow[];
}

/** The mix `--chaos` turns on. */
export const DEFAULT_CHAOS: Readonly<Required<ChaosOptions>> = {
  crashRate: 0.05,
  crashAfterReceive: 0, // set from the message count by the caller: a third of the messages
  slowEvery: 25,
  slowSeconds: 35,
  sqsOutageSeconds: 5,
  redirectEvery: 20,
  sigtermPhaseMessages: 20,
  sigtermPhaseTableSlowMs: 0,
  sigtermPhaseValidatorMs: 3000,
  sigtermPhaseValidatorConcurrency: 2,
  tableFaults: CHAOS_TABLE_FAULTS,
};

export interface LabOptions {
  scenario: Scenario;
  /** distinct messages (valid + poison), producer duplicates come on top */
  messages: number;
  /** msg/s for the generator, 0 = preload everything before the worker starts */
  rate: number;
  /** known users, 2000 */
  users: number;
  /** 1 */
  seed: number;
  /** 0.02 */
  poisonShare: number;
  /** 0.01 producer duplicates */
  duplicateShare: number;
  /** 0.01 */
  unknownShare: number;
  /** 0.2: share of messages on the hot users */
  hotShare: number;
  /** how many hot users (`--hot-users K`); default 1% of the known users */
  hotUsers?: number;
  /** send only the messages of the users that are not hot (`--without-hot`): the quiet baseline */
  withoutHot?: boolean;
  /** RATE_LIMIT for the workers (`--rate-limit N/DURATION`); the summary's windows use its DURATION */
  rateLimit?: string;
  /** the worker command; default `deno task start` (startCommand()); env vars are added by the lab */
  workerCmd?: string[];
  /** extra env vars for the worker (override the lab's) */
  workerEnv?: Record<string, string>;
  /** working directory of the worker, default the repository root */
  workerCwd?: string;
  /** enrichment and validator answer instantly (the lab's ceiling) */
  instant?: boolean;
  /**
   * the validator's latency range per submission, ms; default the simulator's [1, 4] (a service
   * next door). The fleet bench sets a remote service's, so one worker is bound by its own caps.
   */
  validatorLatencyMs?: [number, number];
  /** start the services, preload, report the env vars, and wait for `signal` instead of starting a worker */
  infraOnly?: boolean;
  json?: boolean;
  /** give up after this long; default 120 s + 40 ms per message */
  timeoutSeconds?: number;
  chaos?: ChaosOptions;
  onProgress?: (p: LabProgress) => void;
  /** called once the services run, with the env vars a worker needs (infra-only prints them) */
  onInfraReady?: (env: Record<string, string>) => void;
  /** ends the run early (Ctrl-C); in infra-only mode the only way to end it */
  signal?: AbortSignal;
  /** how long the worker may drain after SIGTERM before SIGKILL, default 30 s */
  stopTimeoutSeconds?: number;
  /** worker processes on the one queue (`--workers N`); given, each gets a counting validator front */
  workers?: number;
  /** start dynalite and run the workers with IDEMPOTENCY_TABLE (`--table`) */
  table?: boolean;
  /** the workers share RATE_LIMIT through RATE_LIMIT_TABLE, the same table (`--rate-table`) */
  rateTable?: boolean;
  /** a FIFO main queue and DLQ, one message group per user (`--fifo`) */
  fifo?: boolean;
  /** FIFO runs: this many message groups instead of one per user (`--fifo-groups N`) */
  fifoGroups?: number;
  /** share of valid messages published to an SNS topic the queue subscribes to (`--envelopes X`) */
  envelopeShare?: number;
  /** share of valid messages sent as S3 pointers, a tenth of them 2 MB (`--pointers X`) */
  pointerShare?: number;
  /**
   * FIFO runs: the validator answers 503 to every submission of one group (the one with the most
   * valid messages) for this long from its first; p50/p99 are then the other groups'
   * (`--failing-group SECONDS`)
   */
  failingGroupSeconds?: number;
  /**
   * FIFO runs: the SQS proxy keeps the FIFO queues (several messages of a group per receive, as
   * SQS; lab/sqs_fifo.ts) instead of fauxqs (one per group per receive); default true
   */
  fifoInProxy?: boolean;
  /** `--trace`: an OTLP receiver for the worker's spans, half the messages producer-traced */
  trace?: boolean;
  /** half the messages producer-traced, as with `trace`, but no receiver: export stays off */
  producerTraced?: boolean;
  /**
   * `--table-missing`: dynalite runs, IDEMPOTENCY_TABLE names a table it does not have; the
   * worker must stop at startup and leave the queue untouched (lab/table_missing.ts)
   */
  tableMissing?: boolean;
}

import type { TraceSummary } from "./trace_check.ts";

export interface LabProgress {
  phase: "preloading" | "running" | "stopping" | "infra";
  elapsedSeconds: number;
  sent: number;
  /** distinct SQS messages received by the worker */
  received: number;
  /** valid messages accepted by the validator (first acceptances) */
  accepted: number;
  valid: number;
  rejected: number;
  /** messages in the DLQ */
  deadLettered: number;
  poison: number;
  /** main queue messages not visible (held by the worker) */
  inFlight: number;
  /** acceptances per second over the last ~2 s */
  msgPerSecond: number;
  /** worker kills so far (chaos) */
  kills: number;
  /** 429/5xx answers and timeouts the simulators gave so far */
  errors: number;
  /** the worker's in-process retries (sluice_retries_total, summed over restarts) */
  retries: number;
  /** circuit breakers seen opening (sluice_breaker_state turning 2) */
  breakerOpens: number;
  /** table requests the fault proxy refused, throttled or slowed so far */
  tableFaults: number;
}

/** What the table fault proxy did during a run. */
export interface TableFaultSummary extends TableProxyStats {
  /** each window: its kind, when it started (s after the run's start) and how long it lasted */
  windows: Array<{ kind: TableFault["kind"]; startedAtSeconds: number; seconds: number }>;
}

export interface LabSummary {
  scenario: Scenario;
  messages: number;
  valid: number;
  poison: number;
  producerDuplicates: number;
  accepted: number;
  duplicateSubmissions: number;
  /** the duplicate submissions by cause (lab/duplicate_causes.ts); they add up to the total */
  duplicateCauses?: DuplicateCauses;
  wronglyRejected: number;
  lost: number;
  deadLettered: number;
  poisonInDlq: number;
  leftInQueue: number;
  killedInFlight: number;
  /** first receive to the last final outcome */
  durationSeconds: number;
  /** (accepted + poison in the DLQ) / durationSeconds */
  msgPerSecond: number;
  /** acceptances between the 10th and the 90th percentile acceptance time ÷ that span (warm-up and tail left out) */
  steadyMsgPerSecond: number;
  /** user + system CPU of the worker's process tree from its first receive to the end of the run, ms; 0 when unknown (a chaos kill, no /proc) */
  workerCpuMs: number;
  /** workerCpuMs per settled message (accepted + poison in the DLQ), 0 when unknown */
  cpuMsPerMessage: number;
  /** brownout and outage: the first enrichment success after the first window ended, ms after it */
  enrichRecoveryMs?: number;
  /** enrichment requests that arrived inside a brownout window */
  enrichBrownoutRequests: number;
  /** receive-to-accept, first receive to first acceptance, valid messages */
  p50Ms: number;
  p99Ms: number;
  /** the same for the users that are not hot, and for the hot ones (`--hot-users`) */
  quietP50Ms?: number;
  quietP99Ms?: number;
  hotP99Ms?: number;
  /** the most submissions of one user in a window (RATE_LIMIT's DURATION, else 1 s), the three busiest */
  keyWindows?: KeyWindowFigures;
  sqsRequests: number;
  sqsRequestsPerMessage: number;
  /** enrichment requests (health checks excluded) */
  enrichRequests: number;
  enrichRequestsPerMessage: number;
  /** ids asked for (single and batch) per valid message: below 1 means the cache works */
  enrichIdsPerMessage: number;
  peakRssMb: number;
  ok: boolean;
  problems: string[];
  /** lab additions beyond the spec: */
  sqsRequestsByAction: Record<string, number>;
  rejectedByReason: Record<string, number>;
  kills: number;
  /** poison bodies found in the DLQ more than once (allowed up to killedInFlight) */
  dlqExtraCopies: number;
  /** the worker's stdout/stderr */
  logFile: string;
  /** the `--chaos` SIGTERM phase, when it ran */
  sigtermPhase?: SigtermPhaseSummary;
  /** 429/5xx answers and timeouts from the enrichment API and the validator simulators */
  downstreamErrors: number;
  /** the worker's in-process retries */
  retries: number;
  /** circuit breakers seen opening */
  breakerOpens: number;
  /** whether the workers shared an idempotency table */
  table?: boolean;
  /** FIFO runs: messages first accepted after a later message of their group (must be 0) */
  orderInversions?: number;
  /**
   * chaos: valid messages SQS's redrive policy moved to the DLQ after every receive it allowed
   * ended in a kill (no worker could settle them; not counted against the worker)
   */
  strandedOut?: number;
  /** `failingGroupSeconds` runs: the failing group (p50/p99 leave it out) */
  failingGroup?: string;
  /** per worker slot, when the run had validator fronts (`--workers`) */
  workers?: WorkerShare[];
  /** the killed workers' submissions on the wire at their kills (sent, acceptance not recorded) */
  onWireAtKills?: number;
  /** DynamoDB requests by action (the lab's counting, also the killed workers' and the judge's reads) */
  tableRequests?: Record<string, number>;
  /** the table fault proxy's counts and windows, when the run had table faults */
  tableFaults?: TableFaultSummary;
  /** `--table-missing`: how the worker stopped and what it left of the queue */
  tableMissing?: TableMissingSummary;
  /** `--trace`: what the OTLP receiver got (lab/trace_check.ts) */
  traces?: TraceSummary;
}
