/**
 * Loading the module a server comes from (the CLI's ENTRY, or the main module that
 * `serve({ workers })` re-runs in each worker), and loading it again for a reload.
 */
import { createRequire } from "node:module";
import { extname } from "node:path";
import { pathToFileURL } from "node:url";

export const ENTRY_EXTENSIONS = [".js", ".mjs", ".cjs", ".ts", ".mts", ".cts"];
const TS_EXTENSIONS = new Set([".ts", ".mts", ".cts"]);
const require = createRequire(import.meta.url);

let typeScriptReady: Promise<void> | null = null;

/** tsx's loader hooks, once per thread; they cost a worker-thread start, so plain JavaScript skips them. */
function loadTypeScript(): Promise<void> {
  typeScriptReady ??= Promise.all([import("tsx/esm/api"), import("tsx/cjs/api")]).then(([esm, cjs]) => {
    esm.register();
    // Outside a "type": "module" package Node loads .ts as CommonJS, which only tsx's require hook compiles.
    cjs.register();
  });
  return typeScriptReady;
}

/** Imports the module at `path` (absolute), compiling TypeScript when it is TypeScript. */
export async function importEntry(path: string): Promise<Record<string, unknown>> {
  if (TS_EXTENSIONS.has(extname(path))) await loadTypeScript();
  return import(pathToFileURL(path).href);
}

let reloads = 0;

/**
 * Evaluates the module at `path` again, as a new instance: its top-level code runs again and
 * its default export is the current one. (Only this module: what it imports stays loaded.)
 */
export async function importEntryAgain(path: string): Promise<Record<string, unknown>> {
  if (TS_EXTENSIONS.has(extname(path))) await loadTypeScript();
  // A CommonJS module is cached by file name whatever the URL says.
  delete require.cache[path];
  return import(`${pathToFileURL(path).href}?uwserve-reload=${++reloads}`);
}
