/**
 * Request headers as uWS handed them (a flat name/value array), readable with `get`/`has`
 * without building an undici Headers (~1 µs). Any other member builds the real one once.
 */
import { NativeHeaders } from "./_globals.js";
import { delegateMissingMembers } from "./_delegate.js";

let realOf: (headers: LazyHeaders) => Headers;

export class LazyHeaders {
  #raw: string[];
  #real: Headers | null;

  /** `raw` is [name, value, …] with lower-case names, as uWS reports them. */
  constructor(raw: string[]) {
    this.#raw = raw;
    this.#real = null;
  }

  static {
    realOf = (headers) => headers.#materialize();
  }

  #materialize(): Headers {
    if (this.#real === null) {
      const real = new NativeHeaders();
      appendRawHeaders(real, this.#raw);
      this.#real = real;
    }
    return this.#real;
  }

  get(name: string): string | null {
    if (this.#real !== null) return this.#real.get(name);
    const key = String(name).toLowerCase();
    const raw = this.#raw;
    let found: string | null = null;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i] !== key) continue;
      if (key === "set-cookie" || !isPlainValue(raw[i + 1]!)) return this.#materialize().get(name);
      found = found === null ? raw[i + 1]! : `${found}, ${raw[i + 1]}`;
    }
    // A name undici would reject must throw as it does: let the real one decide.
    if (found === null && !/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(key)) return this.#materialize().get(name);
    return found;
  }

  has(name: string): boolean {
    return this.get(name) !== null;
  }

  get [Symbol.toStringTag](): string {
    return "Headers";
  }

  [Symbol.for("nodejs.util.inspect.custom")](): Headers {
    return this.#materialize();
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.#materialize()[Symbol.iterator]();
  }
}

/** Values with no byte a Headers object would drop or refuse. */
function isPlainValue(value: string): boolean {
  return !/[\0\r\n]/.test(value);
}

delegateMissingMembers(LazyHeaders, NativeHeaders, (self) => realOf(self as LazyHeaders));

/** Appends [name, value, …] as uWS reported them to undici Headers (a LazyHeaders' or a real Request's). */
export function appendRawHeaders(headers: Headers, raw: readonly string[]): void {
  for (let i = 0; i < raw.length; i += 2) {
    try {
      headers.append(raw[i]!, raw[i + 1]!);
    } catch {
      // uWS accepted a value undici refuses (e.g. a NUL byte): leave it out, never throw.
    }
  }
}
