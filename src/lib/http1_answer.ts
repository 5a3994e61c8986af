/**
 * A fully read answer of lib/http1_client.ts, standing in for a Response. Why not a Response: one
 * costs ~7 µs of CPU under Deno (its Headers list, body extraction, a stream when read), a third of
 * the client's whole request (docs/performance.md). It has the members sluice's readers use —
 * status, ok, type, headers (get, has, iteration), body, bodyUsed, text(), json(), arrayBuffer(),
 * bytes() — and is handed out as a Response; tests/lib/http1_client_test.ts reads one through
 * guarded_fetch.ts's readers. A streamed answer is a real Response.
 */

import { decodeFields } from "./http1_answer_head.ts";

const decoder = new TextDecoder();

/** Read-only headers, decoded from the head's field bytes when first asked for. */
export class AnswerHeaders {
  #fields: Uint8Array;
  #list: [string, string][] | undefined;
  constructor(fields: Uint8Array) {
    this.#fields = fields;
  }

  get list(): [string, string][] {
    return this.#list ??= decodeFields(this.#fields);
  }

  get(name: string): string | null {
    const key = name.toLowerCase();
    let found: string | null = null;
    for (const [n, v] of this.list) if (n === key) found = found === null ? v : `${found}, ${v}`;
    return found;
  }

  has(name: string): boolean {
    return this.get(name) !== null;
  }

  forEach(fn: (value: string, name: string) => void): void {
    for (const [name, value] of this.list) fn(value, name);
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.list[Symbol.iterator]();
  }

  entries(): IterableIterator<[string, string]> {
    return this.list[Symbol.iterator]();
  }
}

/** An answer whose body is in memory. */
export class Answer {
  readonly type = "basic";
  readonly redirected = false;
  readonly statusText = "";
  readonly headers: AnswerHeaders;
  #bytes: Uint8Array<ArrayBuffer> | null;
  #stream: ReadableStream<Uint8Array> | null = null;
  #used = false;

  constructor(
    readonly status: number,
    fields: Uint8Array,
    bytes: Uint8Array<ArrayBuffer> | null,
    readonly url: string,
  ) {
    this.headers = new AnswerHeaders(fields);
    this.#bytes = bytes;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  /** A stream of the bytes, made only when asked for (cancelling it is then free). */
  get body(): ReadableStream<Uint8Array> | null {
    if (this.#bytes === null) return null;
    if (!this.#stream) {
      const bytes = this.#bytes;
      this.#stream = new ReadableStream<Uint8Array>({
        pull: (controller) => {
          this.#used = true;
          if (bytes.length > 0) controller.enqueue(bytes);
          controller.close();
        },
        cancel: () => {
          this.#used = true;
        },
      }, { highWaterMark: 0 });
    }
    return this.#stream;
  }

  bytes(): Promise<Uint8Array<ArrayBuffer>> {
    if (this.#used) return Promise.reject(new TypeError("Body already consumed"));
    this.#used = true;
    return Promise.resolve(this.#bytes ?? new Uint8Array(0));
  }

  async text(): Promise<string> {
    return decoder.decode(await this.bytes());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.bytes();
    return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
      ? bytes.buffer
      : bytes.slice().buffer;
  }
}

/** The answer as the Response type the fetch signature promises. */
export function asResponse(answer: Answer): Response {
  return answer as unknown as Response;
}
