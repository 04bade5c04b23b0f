// uwserve on its node engine (node:http under the same API): uwserve.mjs's server, with the
// engine chosen the way a whole process chooses it (UWSERVE_ENGINE). Its ceiling is node-http.
process.env.UWSERVE_ENGINE = "node";
await import("./uwserve.mjs");
