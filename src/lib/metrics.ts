/**
 * A small Prometheus registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format 0.0.4.
 */

/** Label values by label name. */
export type Labels = Record<string, string>;

/** A value that only goes up. */
export interface Counter {
  /** Adds `value` (default 1, must be >= 0) to the series for `labels`. */
  inc(labels?: Labels, value?: number): void;
  /** The current value of the series for `labels` (0 if never touched). */
  get(labels?: Labels): number;
  /** Creates the series for `labels` at 0, so it is exported before its first update. */
  init(labels?: Labels): void;
}

/** A value that goes up and down. */
export interface Gauge {
  /** Sets the series for `labels` to `value`. */
  set(labels: Labels | undefined, value: number): void;
  /** Adds `value` (default 1). */
  inc(labels?: Labels, value?: number): void;
  /** Subtracts `value` (default 1). */
  dec(labels?: Labels, value?: number): void;
  /** The current value of the series for `labels` (0 if never touched). */
  get(labels?: Labels): number;
  /** Creates the series for `labels` at 0, so it is exported before its first update. */
  init(labels?: Labels): void;
}

/** Counts observations into cumulative buckets. */
export interface Histogram {
  /** Records one observation in the series for `labels`. */
  observe(labels: Labels | undefined, value: number): void;
  /** Observations recorded for `labels`. */
  count(labels?: Labels): number;
  /** Sum of the observations recorded for `labels`. */
  sum(labels?: Labels): number;
  /** Creates the series for `labels` with empty buckets, so it is exported before its first observation. */
  init(labels?: Labels): void;
}

/** Default histogram buckets, in seconds. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
]);

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** Label names, label values and storage shared by every metric type. */
abstract class Metric<S> {
  /** Every series in creation order (the exposition's order). */
  readonly #series: Array<{ values: string[]; state: S }> = [];
  /**
   * Hot path (every message updates several series): a map per label level keyed by the
   * label's value, so a lookup builds no key string; the leaf holds the series.
   */
  readonly #index = new Map<string, unknown>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge" | "histogram",
    readonly labelNames: readonly string[],
  ) {}

  protected abstract initial(): S;
  protected abstract lines(name: string, labelPairs: string[], state: S): string[];

  /** The series for `labels`, created on first use; labels must match `labelNames` exactly. */
  protected series(labels: Labels | undefined): S {
    const found = this.#find(labels, true);
    if (found !== undefined) return found.state;
    // The label names are checked in full only when a series is created.
    const entry = { values: this.#values(labels), state: this.initial() };
    this.#leafMap(labels, true)!.set(this.#leafKey(labels), entry);
    this.#series.push(entry);
    return entry.state;
  }

  /** Creates the series for `labels` at its initial state (a no-op when it exists). */
  init(labels?: Labels): void {
    this.series(labels);
  }

  /** The series for `labels` if it exists, without creating it. */
  protected existing(labels: Labels | undefined): S | undefined {
    this.#values(labels); // throws for labels that do not match
    return this.#find(labels, false)?.state;
  }

  #find(labels: Labels | undefined, create: boolean): { state: S } | undefined {
    const map = this.#leafMap(labels, create);
    return map?.get(this.#leafKey(labels)) as { state: S } | undefined;
  }

  /** The map that holds the series for `labels` (made on the way when `create`). */
  #leafMap(labels: Labels | undefined, create: boolean): Map<string, unknown> | undefined {
    const names = this.labelNames;
    let map = this.#index;
    for (let i = 0; i < names.length - 1; i++) {
      const value = String(labels?.[names[i]!]);
      let next = map.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) {
        if (!create) return undefined;
        map.set(value, next = new Map());
      }
      map = next;
    }
    return map;
  }

  #leafKey(labels: Labels | undefined): string {
    const names = this.labelNames;
    return names.length === 0 ? "" : String(labels?.[names[names.length - 1]!]);
  }

  #values(labels: Labels | undefined): string[] {
    const given = labels ?? {};
    const keys = Object.keys(given);
    if (
      keys.length !== this.labelNames.length ||
      !this.labelNames.every((n) => Object.hasOwn(given, n))
    ) {
      throw new Error(
        `Cannot use the labels of metric ${this.name}: received [${keys.join(", ")}], expected [${
          this.labelNames.join(", ")
        }]`,
      );
    }
    return this.labelNames.map((n) => String(given[n]));
  }

  render(): string[] {
    const out = [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
    // A metric without labels has exactly one series, so show it even before its first update.
    if (this.labelNames.length === 0) this.series(undefined);
    for (const { values, state } of this.#series) {
      const pairs = values.map((v, i) => `${this.labelNames[i]}="${escapeLabelValue(v)}"`);
      out.push(...this.lines(this.name, pairs, state));
    }
    return out;
  }
}

function sample(name: string, pairs: string[], value: number): string {
  return `${name}${pairs.length > 0 ? `{${pairs.join(",")}}` : ""} ${formatValue(value)}`;
}

class CounterImpl extends Metric<{ value: number }> implements Counter {
  protected initial() {
    return { value: 0 };
  }
  protected lines(name: string, pairs: string[], state: { value: number }): string[] {
    return [sample(name, pairs, state.value)];
  }
  inc(labels?: Labels, value = 1): void {
    if (!(value >= 0)) {
      throw new RangeError(
        `Cannot change counter ${this.name}: received ${value}, expected a number >= 0`,
      );
    }
    this.series(labels).value += value;
  }
  get(labels?: Labels): number {
    return this.existing(labels)?.value ?? 0;
  }
}

class GaugeImpl extends Metric<{ value: number }> implements Gauge {
  protected initial() {
    return { value: 0 };
  }
  protected lines(name: string, pairs: string[], state: { value: number }): string[] {
    return [sample(name, pairs, state.value)];
  }
  set(labels: Labels | undefined, value: number): void {
    this.series(labels).value = value;
  }
  inc(labels?: Labels, value = 1): void {
    this.series(labels).value += value;
  }
  dec(labels?: Labels, value = 1): void {
    this.series(labels).value -= value;
  }
  get(labels?: Labels): number {
    return this.existing(labels)?.value ?? 0;
  }
}

interface HistogramState {
  /** Non-cumulative count per bucket, plus one for +Inf at the end. */
  buckets: number[];
  sum: number;
  count: number;
}

class HistogramImpl extends Metric<HistogramState> implements Histogram {
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly bounds: readonly number[],
  ) {
    super(name, help, "histogram", labelNames);
  }
  protected initial(): HistogramState {
    return { buckets: new Array(this.bounds.length + 1).fill(0), sum: 0, count: 0 };
  }
  protected lines(name: string, pairs: string[], state: HistogramState): string[] {
    const out: string[] = [];
    let cumulative = 0;
    this.bounds.forEach((bound, i) => {
      cumulative += state.buckets[i] ?? 0;
      out.push(sample(`${name}_bucket`, [...pairs, `le="${formatValue(bound)}"`], cumulative));
    });
    out.push(sample(`${name}_bucket`, [...pairs, `le="+Inf"`], state.count));
    out.push(sample(`${name}_sum`, pairs, state.sum));
    out.push(sample(`${name}_count`, pairs, state.count));
    return out;
  }
  observe(labels: Labels | undefined, value: number): void {
    if (Number.isNaN(value)) {
      throw new RangeError(
        `Cannot observe histogram ${this.name}: received NaN, expected a number`,
      );
    }
    const state = this.series(labels);
    const index = this.bounds.findIndex((bound) => value <= bound);
    state.buckets[index === -1 ? this.bounds.length : index]! += 1;
    state.sum += value;
    state.count += 1;
  }
  count(labels?: Labels): number {
    return this.existing(labels)?.count ?? 0;
  }
  sum(labels?: Labels): number {
    return this.existing(labels)?.sum ?? 0;
  }
}

/** A counter without labels whose value comes from `read` at render time. */
class ObservedCounter extends Metric<null> {
  constructor(name: string, help: string, readonly read: () => number) {
    super(name, help, "counter", []);
  }
  protected initial(): null {
    return null;
  }
  protected lines(name: string, pairs: string[]): string[] {
    return [sample(name, pairs, this.read())];
  }
}

/** A set of metrics rendered together; each name may be registered once. */
export class Registry {
  readonly #metrics = new Map<string, { render(): string[] }>();
  readonly #collectors: Array<() => void> = [];

  /** Registers a counter; throws if the name is taken or a name is invalid. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new CounterImpl(name, help, "counter", this.#check(name, labelNames)));
  }

  /** Registers a gauge; throws if the name is taken or a name is invalid. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new GaugeImpl(name, help, "gauge", this.#check(name, labelNames)));
  }

  /**
   * Registers a histogram with ascending finite `buckets` (default
   * {@linkcode DEFAULT_BUCKETS}; `+Inf` is implicit). Throws if the name is
   * taken, a name is invalid, a label is called `le`, or buckets are unsorted.
   */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ): Histogram {
    this.#check(name, labelNames);
    if (labelNames.includes("le")) {
      throw new Error(
        `Cannot register histogram ${name}: received the label "le", expected others`,
      );
    }
    const bounds = buckets.filter((b) => b !== Infinity);
    if (bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]!))) {
      throw new Error(
        `Cannot register histogram ${name}: received buckets [${
          buckets.join(", ")
        }], expected finite and strictly ascending bounds`,
      );
    }
    return this.#add(new HistogramImpl(name, help, [...labelNames], bounds));
  }

  /**
   * Registers a counter whose value is read at scrape time from a source that
   * only goes up (e.g. the process's CPU seconds). Throws like `counter`.
   */
  observedCounter(name: string, help: string, read: () => number): void {
    this.#check(name, []);
    this.#add(new ObservedCounter(name, help, read));
  }

  /** Registers a callback run before each render (e.g. to set process_* gauges). */
  onCollect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  /**
   * The Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE`, escaped
   * label values, histogram `_bucket{le}` / `_sum` / `_count` with `+Inf`.
   * Runs the `onCollect` callbacks first; an error from one propagates.
   */
  render(): string {
    for (const collect of this.#collectors) collect();
    const lines: string[] = [];
    for (const metric of this.#metrics.values()) lines.push(...metric.render());
    return lines.length > 0 ? lines.join("\n") + "\n" : "";
  }

  #check(name: string, labelNames: readonly string[]): readonly string[] {
    if (!METRIC_NAME.test(name)) {
      throw new Error(
        `Cannot register metric: received the name ${
          JSON.stringify(name)
        }, expected ${METRIC_NAME}`,
      );
    }
    if (this.#metrics.has(name)) {
      throw new Error(
        `Cannot register metric ${name}: received a name already registered, expected a new one`,
      );
    }
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label)) {
        throw new Error(
          `Cannot register metric ${name}: received the label name ${
            JSON.stringify(label)
          }, expected ${LABEL_NAME}`,
        );
      }
    }
    if (new Set(labelNames).size !== labelNames.length) {
      throw new Error(
        `Cannot register metric ${name}: received a label name twice, expected distinct names`,
      );
    }
    return [...labelNames];
  }

  #add<M extends { name: string; render(): string[] }>(metric: M): M {
    this.#metrics.set(metric.name, metric);
    return metric;
  }
}
