/**
 * Which uWS build this process loads (by Node ABI, see lib/uws.ts): tests that pin the core's
 * own answers to bad input assert what each build does.
 */
import { coreTraits } from "../../dist/uws.js";

/** The Node 22+ binaries: a newer core (split request lines parsed, 400 for bad header lines). */
export const NEWER_CORE: boolean = coreTraits.newerCore;
/** A short name of the build, for test titles. */
export const CORE_BUILD: string = NEWER_CORE ? `newer core (ABI ${coreTraits.abi})` : `Node 20 core (ABI ${coreTraits.abi})`;
