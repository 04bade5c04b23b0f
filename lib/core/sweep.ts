/**
 * A set checked on one shared interval: the timer runs only while the set is non-empty and never
 * keeps the process alive. For per-request deadlines and idle checks, instead of a timer each.
 */
export class Sweep<T> {
  readonly #items: Set<T>;
  readonly #intervalMs: number;
  /** Called for each item on every tick; returns false to drop the item. */
  readonly #check: (item: T, now: number) => boolean;
  #timer: ReturnType<typeof setInterval> | null;

  constructor(intervalMs: number, check: (item: T, now: number) => boolean) {
    this.#items = new Set();
    this.#intervalMs = intervalMs;
    this.#check = check;
    this.#timer = null;
  }

  add(item: T): void {
    this.#items.add(item);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  delete(item: T): void {
    this.#items.delete(item);
  }

  has(item: T): boolean {
    return this.#items.has(item);
  }

  /** Stops the timer and forgets every item. */
  clear(): void {
    this.#items.clear();
    this.#stop();
  }

  #tick(): void {
    const now = Date.now();
    for (const item of this.#items) if (!this.#check(item, now)) this.#items.delete(item);
    if (this.#items.size === 0) this.#stop();
  }

  #stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
