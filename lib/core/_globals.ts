/**
 * The runtime's own web classes, captured when uwserve loads, before `uwserve/global` (opt-in)
 * can replace `globalThis.Response`. Everything internal uses these, never the live globals.
 */
export const NativeResponse: typeof Response = globalThis.Response;
export const NativeRequest: typeof Request = globalThis.Request;
export const NativeHeaders: typeof Headers = globalThis.Headers;
