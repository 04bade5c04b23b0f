/**
 * Which uWS build this process loads (by Node ABI, see lib/uws.ts): tests that pin the core's
 * own answers to bad input assert what each build does.
 */
import { coreTraits } from "../../dist/engines/uws/uws.js";

/** The Node 22+ binaries: a newer core (split request lines parsed, 400 for bad header lines). */
export const NEWER_CORE: boolean = coreTraits.newerCore;
/** A short name of the build, for test titles. */
export const CORE_BUILD: string = NEWER_CORE ? `newer core (ABI ${coreTraits.abi})` : `Node 20 core (ABI ${coreTraits.abi})`;

/**
 * The engine this test process serves with (UWSERVE_ENGINE, else "auto": uws where its core
 * loads). The whole suite runs once per engine (vitest.config.ts); tests of what only one
 * engine has, or where the two answer differently, say so with these.
 */
import { coreUnavailable } from "../../dist/engines/uws/uws.js";

const chosen = process.env.UWSERVE_ENGINE;
/** The uWS core loads in this process (whichever engine the suite runs on). */
export const CORE_LOADS = coreUnavailable() === null;
export const ENGINE: "uws" | "node" = chosen === "node" || (chosen !== "uws" && coreUnavailable() !== null) ? "node" : "uws";
export const ON_NODE_ENGINE = ENGINE === "node";
/** A short name of what answers malformed input: the uWS build, or node:http. */
export const HTTP_PARSER: string = ON_NODE_ENGINE ? `node engine (llhttp, Node ${process.versions.node})` : CORE_BUILD;
const [nodeMajor, nodeMinor] = process.versions.node.split(".").map(Number) as [number, number];
/** node:net shares a port between threads and processes (SO_REUSEPORT) from Node 22.12. */
export const NODE_SHARES_PORTS = nodeMajor > 22 || (nodeMajor === 22 && nodeMinor >= 12);
/** Worker groups and reusePort: every uws engine; the node engine where node:net shares a port. */
export const HAS_WORKERS = !ON_NODE_ENGINE || NODE_SHARES_PORTS;
