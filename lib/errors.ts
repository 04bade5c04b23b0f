/** The catalogue of uwserve's errors: stable codes that tests and users can match on. */

export type UwserveErrorCode =
  | "UWSERVE_ERR_INVALID_OPTION"
  | "UWSERVE_ERR_INVALID_CALL"
  | "UWSERVE_ERR_BAD_ROUTE"
  | "UWSERVE_ERR_PORT_IN_USE"
  | "UWSERVE_ERR_ADDRESS_IN_USE"
  | "UWSERVE_ERR_LISTEN"
  | "UWSERVE_ERR_NOT_SUPPORTED"
  | "UWSERVE_ERR_TLS"
  | "UWSERVE_ERR_NATIVE_UNAVAILABLE"
  | "UWSERVE_ERR_UWS_UNAVAILABLE"
  | "UWSERVE_ERR_ENGINE_UNAVAILABLE"
  | "UWSERVE_ERR_ENGINE_UNSUPPORTED"
  | "UWSERVE_ERR_BAD_RESPONSE"
  | "UWSERVE_ERR_BODY_USED"
  | "UWSERVE_ERR_BODY_TOO_LARGE"
  | "UWSERVE_ERR_REQUEST_CLOSED"
  | "UWSERVE_ERR_NOT_A_SERVER_REQUEST"
  | "UWSERVE_ERR_NO_WEBSOCKET_HANDLER"
  | "UWSERVE_ERR_WORKER"
  | "UWSERVE_ERR_PEER_MISSING"
  | "UWSERVE_ERR_BACKPLANE";

type ErrorClass = new (message: string) => Error;

/** Builds an error of `Base` class carrying a stable `code`, like Node's own `ERR_*` errors. */
export function uwserveError<T extends ErrorClass>(
  Base: T,
  code: UwserveErrorCode,
  message: string,
  cause?: unknown,
): InstanceType<T> & { code: UwserveErrorCode } {
  const err = new Base(message) as InstanceType<T> & { code: UwserveErrorCode };
  Object.defineProperty(err, "code", { value: code, enumerable: true, configurable: true, writable: true });
  if (cause !== undefined) Object.defineProperty(err, "cause", { value: cause, configurable: true, writable: true });
  return err;
}

/** Describes a received value for error messages: `a string ("x")`, `a number (3)`, `an object`. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  switch (typeof value) {
    case "string":
      return `a string (${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)})`;
    case "number":
    case "bigint":
    case "boolean":
      return `a ${typeof value} (${String(value)})`;
    case "function":
      return `a function${value.name ? ` (${value.name})` : ""}`;
    case "symbol":
      return "a symbol";
    default: {
      const name = (value as object).constructor?.name;
      return name && name !== "Object" ? `an instance of ${name}` : "an object";
    }
  }
}

/** TypeError for an option of the wrong type: names the option, what was expected and what came. */
export function invalidOption(name: string, expected: string, actual: unknown): TypeError {
  return uwserveError(
    TypeError,
    "UWSERVE_ERR_INVALID_OPTION",
    `uwserve: option "${name}" must be ${expected}, but received ${describeValue(actual)}`,
  );
}

/** RangeError for an option whose type is right but whose value is out of range. */
export function optionOutOfRange(name: string, expected: string, actual: unknown): RangeError {
  return uwserveError(
    RangeError,
    "UWSERVE_ERR_INVALID_OPTION",
    `uwserve: option "${name}" must be ${expected}, but received ${describeValue(actual)}`,
  );
}
