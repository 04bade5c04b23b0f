/**
 * Makes a lazy stand-in class answer every member of a native web class it doesn't define
 * itself by forwarding to a real instance built on demand. Used by the lazy Request and
 * Headers so their prototypes can chain to the native ones (`instanceof` holds) without
 * the native getters' brand checks ever seeing the stand-in.
 */
export function delegateMissingMembers(
  standIn: { prototype: object },
  native: { prototype: object },
  real: (self: object) => object,
  symbols: readonly symbol[] = [],
): void {
  const own = new Set<PropertyKey>(Reflect.ownKeys(standIn.prototype));
  for (const name of Reflect.ownKeys(native.prototype)) {
    if (own.has(name) || name === "constructor") continue;
    const descriptor = Object.getOwnPropertyDescriptor(native.prototype, name)!;
    if (typeof descriptor.get === "function") {
      Object.defineProperty(standIn.prototype, name, {
        get(this: object) {
          return (real(this) as Record<PropertyKey, unknown>)[name];
        },
        configurable: true,
      });
    } else if (typeof descriptor.value === "function") {
      Object.defineProperty(standIn.prototype, name, {
        value(this: object, ...args: unknown[]) {
          const target = real(this) as Record<PropertyKey, (...a: unknown[]) => unknown>;
          return target[name]!.apply(target, args);
        },
        configurable: true,
        writable: true,
      });
    }
  }
  for (const symbol of symbols) {
    if (own.has(symbol)) continue;
    Object.defineProperty(standIn.prototype, symbol, {
      get(this: object) {
        return (real(this) as Record<symbol, unknown>)[symbol];
      },
      configurable: true,
    });
  }
  Object.setPrototypeOf(standIn.prototype, native.prototype);
}
