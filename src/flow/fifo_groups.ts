/**
 * FIFO queues (docs/fifo.md): the messages of one MessageGroupId are worked one at a time, in
 * the order SQS delivered them; groups run side by side. When a message goes back to the queue
 * (released, re-queued, let go), the later messages of its group already here go back too,
 * before any of them is worked, so the redelivery keeps the group's order. A group that keeps
 * failing holds only its own messages.
 */
import type { Clock } from "../lib/clock.ts";

/** How a message's work ended, as far as its group is concerned. */
export type GroupEnd = "done" | "went_back";

export interface FifoGroupsPorts<T> {
  /** Works one message to its end. Never rejects. */
  work(item: T): Promise<GroupEnd>;
  /** Sends a message back unworked, its group's order kept. Never rejects. */
  handBack(item: T): Promise<void>;
}

export interface FifoGroupsServices {
  clock: Pick<Clock, "monotonic">;
  /** Groups with messages here now. */
  onActive?: (groups: number) => void;
  /** Seconds a message waited behind earlier messages of its group before its work began. */
  onWait?: (seconds: number) => void;
}

interface Queued<T> {
  item: T;
  at: number;
}

export class FifoGroups<T> {
  readonly #ports: FifoGroupsPorts<T>;
  readonly #services: FifoGroupsServices;
  readonly #groups = new Map<string, Array<Queued<T>>>();

  constructor(ports: FifoGroupsPorts<T>, services: FifoGroupsServices) {
    this.#ports = ports;
    this.#services = services;
  }

  /** Groups with messages here now. */
  get active(): number {
    return this.#groups.size;
  }

  /** A message of `group`, in delivery order: worked once every earlier one has ended. */
  add(group: string, item: T): void {
    const entry = { item, at: this.#services.clock.monotonic() };
    const queue = this.#groups.get(group);
    if (queue) {
      queue.push(entry);
      return;
    }
    const fresh = [entry];
    this.#groups.set(group, fresh);
    this.#services.onActive?.(this.#groups.size);
    void this.#drain(group, fresh);
  }

  async #drain(group: string, queue: Array<Queued<T>>): Promise<void> {
    for (let next = queue.shift(); next; next = queue.shift()) {
      this.#services.onWait?.((this.#services.clock.monotonic() - next.at) / 1000);
      if (await this.#ports.work(next.item) === "done") continue;
      const behind = queue.splice(0);
      await Promise.all(behind.map((queued) => this.#ports.handBack(queued.item)));
    }
    this.#groups.delete(group);
    this.#services.onActive?.(this.#groups.size);
  }
}
