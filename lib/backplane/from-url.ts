/** `backplane` as given to serve() or `uwserve --backplane`: a driver, or a broker URL. */
import { invalidOption } from "../errors.js";
import { isBackplaneDriver, redactUrl, type BackplaneDriver } from "./driver.js";
import { natsBackplane } from "./nats.js";
import { redisBackplane } from "./redis.js";

/** The driver a broker URL's scheme picks, null for a scheme none takes. */
export function backplaneKind(url: string): "redis" | "nats" | null {
  if (/^rediss?:\/\//i.test(url)) return "redis";
  if (/^(nats|tls):\/\//i.test(url)) return "nats";
  return null;
}

/** A driver for `value` (null when absent); a URL picks the driver by its scheme. */
export function resolveBackplane(value: unknown, name = "backplane"): BackplaneDriver | null {
  if (value === undefined || value === null) return null;
  if (isBackplaneDriver(value)) return value;
  if (typeof value === "string") {
    const kind = backplaneKind(value);
    if (kind === "redis") return redisBackplane(value);
    if (kind === "nats") return natsBackplane(value);
    throw invalidOption(name, "a redis://, rediss://, nats:// or tls:// URL, or a driver from uwserve/redis or uwserve/nats", redactUrl(value));
  }
  throw invalidOption(name, "a driver from uwserve/redis or uwserve/nats, or a broker URL", value);
}
