/**
 * `uwserve doctor`: what this install can do on this machine, in a few lines. npm hides what
 * install scripts print, so a native addon that failed to build, or a uWS core that can't load
 * here, would otherwise go unnoticed until a feature that needs it is used.
 */
import { coreUnavailable, glibcVersion } from "./engines/uws/uws.js";
import { defaultEngineChoice, fastPathHint, NODE_SHARES_PORTS, shortReason } from "./engines/select.js";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { loadNative } from "./transport/native.js";

/** The report's lines, each "label  text". */
export function doctorReport(version: string): string[] {
  const glibc = glibcVersion();
  const lines = [
    `uwserve ${version}`,
    row("node", `${process.version} (ABI ${process.versions.modules}), ${process.platform}-${process.arch}${glibc !== null ? `, glibc ${glibc}` : ""}`),
  ];

  const core = coreUnavailable();
  let choice: string;
  try {
    choice = defaultEngineChoice();
  } catch (err) {
    choice = `invalid (${(err as Error).message})`;
  }
  if (core === null) {
    lines.push(row("uws core", "loads: the uws engine serves HTTP and WebSockets"));
  } else {
    lines.push(row("uws core", `does not load: ${shortReason(core)}. For the fast path ${fastPathHint(core)}`));
  }
  const picks = core === null ? "uws" : "node (node:http, WebSockets over ws)";
  lines.push(row("engine", choice === "auto" ? `auto → ${picks}` : `${choice} (UWSERVE_ENGINE)`));

  let addonReady = true;
  try {
    loadNative();
    lines.push(row("addon", "uwserve_native loads: workers' cross-thread pub/sub, ref()/unref() on the uws engine, the gzip fast path"));
  } catch (err) {
    addonReady = false;
    lines.push(row("addon", "NOT AVAILABLE: workers can't start, ref()/unref() on the uws engine keep the process alive, gzip uses zlib"));
    for (const line of (err as Error).message.split("\n").slice(1)) lines.push(row("", line.trim()));
  }
  lines.push(
    row("workers", core === null
      ? `uws engine${addonReady ? "" : " (needs the addon)"}`
      : NODE_SHARES_PORTS ? `node engine${addonReady ? "" : " (pub/sub across threads needs the addon)"}` : `not here: the node engine needs Node 22.12+ (this is ${process.version})`),
  );
  lines.push(row("http2", "node engine (serve({ http2: true }))"));
  const peers = [["redis", "redis"], ["nats", "@nats-io/transport-node"]].map(([kind, name]) => {
    const version = peerVersion(name!);
    return `${kind} ${version === null ? `(npm install ${name})` : `(${name} ${version})`}`;
  });
  lines.push(row("backplane", peers.join(", ")));
  const otel = peerVersion("@opentelemetry/api");
  lines.push(row("telemetry", otel === null ? "telemetry: true needs @opentelemetry/api (npm install @opentelemetry/api)" : `@opentelemetry/api ${otel}: telemetry: true / UWSERVE_OTEL=1 / --telemetry`));
  return lines;
}

/** The installed version of an optional peer, as uwserve would load it, else null. */
function peerVersion(name: string): string | null {
  const require = createRequire(import.meta.url);
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    // A package whose "exports" hide package.json: from its entry up to its folder.
    try {
      let dir = dirname(require.resolve(name));
      while (dir !== dirname(dir)) {
        const manifest = join(dir, "package.json");
        if (existsSync(manifest)) {
          const parsed = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string; version: string };
          if (parsed.name === name) return parsed.version;
        }
        dir = dirname(dir);
      }
    } catch {
      // not installed
    }
    return null;
  }
}

function row(label: string, text: string): string {
  return `${label.padEnd(10)} ${text}`;
}
