/**
 * What each worker of `serve({ workers })` runs: the process's main module again, as `cluster`
 * does, with process.argv as the main thread has it. Its serve() call then makes this worker's
 * server on the group's port (lib/serve.ts); the main thread waits for it to listen.
 */
import { importEntry } from "../entry.js";
import { reportEarlyExit, reportWorkerFailure, workerRole } from "./workers.js";

const entry = workerRole()?.entry;
if (entry === undefined) throw new Error("uwserve: worker-entry.js runs only in the workers that serve({ workers }) starts");
reportEarlyExit();
process.argv[1] = entry;
try {
  await importEntry(entry);
} catch (err) {
  reportWorkerFailure(`${entry} threw while loading: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
}
