#!/usr/bin/env node
// scripts/build-native.mjs: builds the optional uwserve_native addon at install time (cmake-js, else node-gyp) and never fails the install.
//
// Env: UWSERVE_SKIP_NATIVE=1 skips the build; UWSERVE_NATIVE_BUILDER=cmake-js|node-gyp uses
// only that builder (to check that CMakeLists.txt and binding.gyp are equivalent);
// UWSERVE_NATIVE_VERBOSE=1 streams the builders' output instead of printing it on failure.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const addon = join(root, "build", "Release", "uwserve_native.node");
const verbose = process.env.UWSERVE_NATIVE_VERBOSE === "1";
const log = (line) => console.log(`uwserve: ${line}`);

// Takes nothing, returns the install prefix whose include/node holds node.h and uv.h for the
// running node (so neither builder downloads headers: works offline), or null when none is found.
function localNodeDir() {
  const hasHeaders = (dir) =>
    existsSync(join(dir, "include", "node", "node.h")) && existsSync(join(dir, "include", "node", "uv.h"));
  // An explicit nodedir (npm config or env) is the user's choice; trust it when it has headers.
  const configured = process.env.npm_config_nodedir;
  if (configured && (hasHeaders(configured) || existsSync(join(configured, "src", "node.h")))) return configured;
  // Official tarballs and distro packages install headers at <prefix>/include/node beside <prefix>/bin/node.
  const prefix = resolve(dirname(process.execPath), "..");
  return hasHeaders(prefix) ? prefix : null;
}

// Takes a builder's name, command and args, returns true when it exited 0; prints its output only on failure.
function run(name, command, args, env) {
  const result = spawnSync(command, args, {
    cwd: root,
    env,
    stdio: verbose ? "inherit" : "pipe",
    encoding: "utf8",
    shell: process.platform === "win32" && command.endsWith(".cmd"),
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status === 0 && existsSync(addon)) return true;
  const why = result.error ? result.error.message : result.status === 0 ? `${addon} was not produced` : `exit code ${result.status ?? result.signal}`;
  log(`${name} failed (${why})`);
  if (!verbose) {
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trimEnd().split("\n");
    for (const line of output.slice(-15)) console.log(`  | ${line}`);
  }
  return false;
}

// Takes the env for the child, returns true when cmake-js built the addon.
function buildWithCmakeJs(env) {
  let bin;
  try {
    bin = join(dirname(createRequire(join(root, "package.json")).resolve("cmake-js/package.json")), "bin", "cmake-js");
  } catch {
    log("cmake-js is not installed, skipping it");
    return false;
  }
  // compile is incremental, but a build/ left by node-gyp has no CMakeCache.txt: start clean then.
  const fresh = existsSync(join(root, "build")) && !existsSync(join(root, "build", "CMakeCache.txt"));
  const args = [bin, fresh ? "rebuild" : "compile", "--directory", root, "--log-level", "warn",
    `--CDNODE_EXECUTABLE=${process.execPath}`];
  return run("cmake-js", process.execPath, args, env);
}

// Takes nothing, returns [command, leading args] for node-gyp: npm's bundled copy when found, else npx.
function findNodeGyp() {
  const candidates = [];
  // npm sets npm_config_node_gyp for lifecycle scripts; npm_execpath points into npm's folder.
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const npmDirs = [];
  if (process.env.npm_execpath) npmDirs.push(resolve(dirname(process.env.npm_execpath), ".."));
  npmDirs.push(resolve(dirname(process.execPath), "..", "lib", "node_modules", "npm"));
  npmDirs.push(resolve(dirname(process.execPath), "node_modules", "npm"));  // Windows layout
  for (const dir of npmDirs) {
    try {
      candidates.push(createRequire(join(dir, "package.json")).resolve("node-gyp/bin/node-gyp.js"));
    } catch {
      // not this npm layout
    }
  }
  for (const file of candidates) {
    if (file.endsWith(".js") && existsSync(file)) return [process.execPath, [file]];
  }
  return [process.platform === "win32" ? "npx.cmd" : "npx", ["--yes", "node-gyp"]];
}

// Takes the local node dir (or null) and the env for the child, returns true when node-gyp built the addon.
function buildWithNodeGyp(nodedir, env) {
  const [command, lead] = findNodeGyp();
  const args = [...lead, "rebuild", "--directory", root, "--loglevel", "warn"];
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  return run("node-gyp", command, args, env);
}

function main() {
  if (process.env.UWSERVE_SKIP_NATIVE === "1") {
    log("native addon skipped (UWSERVE_SKIP_NATIVE=1)");
    return;
  }
  const only = process.env.UWSERVE_NATIVE_BUILDER;
  const forced = only === "cmake-js" || only === "node-gyp";
  if (only && !forced) log(`ignoring UWSERVE_NATIVE_BUILDER=${only} (expected cmake-js or node-gyp)`);
  const nodedir = localNodeDir();
  // cmake-js reads the headers location only from npm_config_nodedir; node-gyp gets --nodedir too.
  const env = nodedir ? { ...process.env, npm_config_nodedir: nodedir } : process.env;
  const builders = [
    ["cmake-js", () => buildWithCmakeJs(env)],
    ["node-gyp", () => buildWithNodeGyp(nodedir, env)],
  ].filter(([name]) => !forced || name === only);
  for (const [name, build] of builders) {
    if (build()) {
      log(`native addon built with ${name}`);
      return;
    }
  }
  log("WARNING: the optional native addon was not built.");
  log("uwserve works without it; only server.unref() is unavailable.");
  log("To build it: install cmake (or python3, make and a C++ compiler) and run `npm rebuild uwserve`.");
}

try {
  main();
} catch (err) {
  // The addon is optional: a bug here must not fail `npm install`.
  log(`WARNING: native addon build script crashed: ${err?.stack ?? err}`);
}
