// Turns per-round cells into medians, flags, ratios and the uwserve targets, and renders them as markdown.

/** Flag symbols, in the order they are printed, with the legend line each one gets. */
export const FLAGS = {
  failed: ["✗", "failed: wrong response, socket errors or non-2xx (see Failures)"],
  clientBound: ["†", "client-bound: the load generator used ≥ 90 % of its core while the server stayed < 90 %, so req/s understates the server"],
  unsaturated: ["‡", "unsaturated: neither process reached 80 % of its core (kernel copying, waits on the network, or a stalled VM)"],
  noisy: ["~", "noisy: something else used ≥ 10 % of the server's or client's core during the measurement"],
  sharedCores: ["⇄", "shares cores with the load generator: the server ran on cores 0-1 (uwserve-workers-2), the load generator on core 1; server CPU can exceed 100 % and there is no noise check on those cores"],
};

/** Takes one measurement's CPU readings and error count, returns its flags. */
export function flagsOf(load) {
  const { server, client, serverForeign, clientForeign } = load.cpu;
  return {
    failed: load.errorCount > 0,
    clientBound: client !== null && server !== null && client >= 90 && server < 90,
    unsaturated: client !== null && server !== null && client < 80 && server < 80,
    noisy: (serverForeign ?? 0) >= 10 || (clientForeign ?? 0) >= 10,
    sharedCores: load.sharedCores === true,
  };
}

/**
 * The targets uwserve is held to (ratios of median req/s). `vs` is the baseline server, in the same
 * scenario unless `vsScenario` names another (routes50 against uwserve's own param, same run).
 * With `per`, each side is first divided by its own req/s in that scenario (json-gzip ÷ json26: the
 * share of its plain throughput a server keeps when it compresses), and those ratios are compared.
 */
export const TARGETS = [
  ...[["hello", 0.9], ["json", 0.85], ["async", 0.85], ["echo", 0.75], ["1mib", 0.8], ["stream", 1.2]].map(
    ([scenario, min]) => ({ server: "uwserve", scenario, vs: "raw-uws", min }),
  ),
  ...["hello", "json", "async", "echo"].flatMap((scenario) => [
    { server: "uwserve", scenario, vs: "node-http", min: 2 },
    { server: "uwserve", scenario, vs: "hono-node", min: 2 },
  ]),
  ...["hello", "json", "async", "echo"].map((scenario) => ({
    server: "uwserve-global", scenario, vs: "raw-uws-global-response", min: 0.9,
  })),
  { server: "uwserve", scenario: "static", vs: "raw-uws", min: 0.95 },
  { server: "uwserve", scenario: "param", vs: "raw-uws", min: 0.9 },
  // Matching the last of 50 routes costs (almost) no more than the only one.
  { server: "uwserve", scenario: "routes50", vs: "uwserve", vsScenario: "param", min: 0.95 },
  { server: "uwserve", scenario: "https-hello", vs: "raw-uws", min: 0.9 },
  // Compressing costs uwserve no larger share of its throughput than it costs Deno.
  { server: "uwserve", scenario: "json-gzip", per: "json26", vs: "deno", min: 1 },
  { server: "uwserve", scenario: "file-1mib", vs: "raw-uws", min: 0.7 },
  { server: "uwserve", scenario: "file-1mib", vs: "node-http", min: 2 },
  // The node engine (uwserve-node): near its ceiling, node:http, and ahead of the other fetch bridges on it.
  ...["hello", "json", "echo", "async", "1mib", "stream"].map((scenario) => ({ server: "uwserve-node", scenario, vs: "node-http", min: 0.92 })),
  ...["hello", "json", "echo", "async"].flatMap((scenario) => [
    { server: "uwserve-node", scenario, vs: "hono-node", min: 1 },
    { server: "uwserve-node", scenario, vs: "srvx-node", min: 1 },
  ]),
  // HTTP/2: there node-http is node:http2's compatibility API (node-http.mjs with BENCH_H2=1).
  ...["h2c-hello", "h2-hello"].map((scenario) => ({ server: "uwserve-node", scenario, vs: "node-http", min: 0.9 })),
  // `uwserve --workers 1` serves on the main thread, as serve() does: the CLI costs nothing per request.
  { server: "uwserve-workers-1", scenario: "hello", vs: "uwserve", min: 0.95 },
];

export function median(values) {
  const v = values.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Takes cells (one per server × scenario × round), returns the rounds of each scenario × server together. */
export function groupCells(cells) {
  const groups = new Map();
  for (const cell of cells) {
    const key = `${cell.scenario}\0${cell.server}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(cell);
  }
  return groups.values();
}

/**
 * What every summary row starts from, for one group of cells (one server × scenario, every round): the cells that
 * measured `field`, its median, its spread (half the min–max range as a % of the median), and how many rounds raised
 * each flag of `flagNames`.
 */
export function roundStats(group, field, flagNames) {
  const measured = group.filter((c) => c[field] != null);
  const values = measured.map((c) => c[field]);
  const value = median(values);
  const flags = {};
  for (const name of flagNames) flags[name] = group.filter((c) => c.flags[name]).length;
  const spreadPct = value && measured.length > 1 ? (100 * (Math.max(...values) - Math.min(...values))) / 2 / Math.abs(value) : null;
  return { measured, value, spreadPct, flags };
}

/** Takes all cells (one per server × scenario × round), returns summary[scenario][server]. */
export function summarize(cells) {
  const summary = {};
  for (const group of groupCells(cells)) {
    const { scenario, server } = group[0];
    const { measured, value: rps, spreadPct, flags } = roundStats(group, "rps", Object.keys(FLAGS));
    (summary[scenario] ??= {})[server] = {
      rounds: group.length,
      rps,
      spreadPct,
      p99Ms: median(measured.map((c) => c.p99Ms)),
      serverCpu: median(measured.map((c) => c.cpu?.server)),
      // Server CPU time per request: still compares servers when the client was the limit (†).
      cpuUsPerReq: median(measured.map((c) => (c.cpu?.server == null ? null : (c.cpu.server / 100) * 1e6 / c.rps))),
      clientCpu: median(measured.map((c) => c.cpu?.client)),
      peakRssMiB: Math.max(0, ...measured.map((c) => c.rssMiB ?? 0)) || null,
      // Response bytes per request the load generator read (head + body), and the checked response.
      bytesPerReq: median(measured.map((c) => c.bytesPerReq)),
      wire: group.find((c) => c.wire)?.wire ?? null,
      flags,
    };
  }
  return summary;
}

/** Takes the summary, returns each target with its label, measured ratio and verdict. */
export function checkTargets(summary) {
  return TARGETS.map((t) => {
    const a = summary[t.scenario]?.[t.server];
    const b = summary[t.vsScenario ?? t.scenario]?.[t.vs];
    const caveats = [];
    const flagged = (who, s) => {
      if (!s) return;
      for (const [name, [symbol]] of Object.entries(FLAGS)) if (s.flags[name]) caveats.push(`${who} ${symbol}`);
    };
    if (t.per) {
      // (server's scenario ÷ its per) against (vs's scenario ÷ its per); by CPU, the same from µs/req.
      const ap = summary[t.per]?.[t.server];
      const bp = summary[t.per]?.[t.vs];
      const share = (x, y) => (x?.rps && y?.rps ? x.rps / y.rps : null);
      const cost = (x, y) => (x?.cpuUsPerReq && y?.cpuUsPerReq ? x.cpuUsPerReq / y.cpuUsPerReq : null);
      const sa = share(a, ap);
      const sb = share(b, bp);
      const ca = cost(a, ap);
      const cb = cost(b, bp);
      for (const [who, s] of [[`${t.server} ${t.scenario}`, a], [`${t.server} ${t.per}`, ap], [`${t.vs} ${t.scenario}`, b], [`${t.vs} ${t.per}`, bp]]) flagged(who, s);
      const ratio = sa && sb ? sa / sb : null;
      return {
        ...t, baseline: `${t.vs}'s`, label: `${t.server} ${t.scenario}/${t.per} ≥ ${t.min.toFixed(2)}× ${t.vs}'s`,
        ratio, cpuRatio: ca && cb ? cb / ca : null, pass: ratio === null ? null : ratio >= t.min, caveats,
      };
    }
    const ratio = a?.rps && b?.rps ? a.rps / b.rps : null;
    const cpuRatio = a?.cpuUsPerReq && b?.cpuUsPerReq ? b.cpuUsPerReq / a.cpuUsPerReq : null;
    const baseline = t.vsScenario ? `${t.vs} ${t.vsScenario}` : t.vs;
    flagged(t.vsScenario ? `${t.server} ${t.scenario}` : t.server, a);
    flagged(baseline, b);
    const label = `${t.server} ${t.scenario} ≥ ${t.min.toFixed(2)}× ${baseline}`;
    return { ...t, baseline, label, ratio, cpuRatio, pass: ratio === null ? null : ratio >= t.min, caveats };
  });
}

const int = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US"));
const bytesText = (n) => (n == null ? "–" : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${Math.round(n).toLocaleString("en-US")} B`);

/** Takes a TLS or compression scenario's rows, returns one line saying what each server's checked response was. */
function wireLine(scenario, rows, ordered) {
  if (!scenario.tls && !scenario.encoded) return null;
  const parts = ordered.filter((s) => rows[s].wire).map((server) => {
    const w = rows[server].wire;
    const what = scenario.tls ? w.tls : `${w.encoding}, ${bytesText(w.bytes)} (${w.framing === "chunked" ? "chunked" : "Content-Length"})`;
    return `${server} ${what}`;
  });
  if (!parts.length) return null;
  return scenario.tls
    ? `Negotiated with the check's node:https client (wrk offers the same OpenSSL defaults): ${parts.join("; ")}.`
    : `Checked responses (Content-Encoding, body bytes on the wire, framing): ${parts.join("; ")}; each decoded to the ${scenario.expect.length}-byte JSON.`;
}

/**
 * Takes a scenario with a `pair` (json-gzip ÷ json26) and both summaries, returns a table of each
 * server's req/s and CPU per request in both, and the share of its plain throughput it keeps.
 */
function pairTable(scenario, rows, pairRows, ordered) {
  const out = [
    `${scenario.name} against ${scenario.pair}, per server (${scenario.pair}: the server without compression, no Accept-Encoding):`, "",
    `| server | ${scenario.pair} req/s | ${scenario.name} req/s | ${scenario.name} ÷ ${scenario.pair} | CPU µs/req ${scenario.pair} | CPU µs/req ${scenario.name} | bytes/response ${scenario.pair} | bytes/response ${scenario.name} |`,
    "|---|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const server of ordered) {
    const a = rows[server];
    const p = pairRows[server];
    if (!p) continue;
    const us = (x) => (x?.cpuUsPerReq == null ? "–" : x.cpuUsPerReq.toFixed(1));
    out.push(`| ${server} | ${int(p.rps)} | ${int(a.rps)} | ${ratioText(a.rps, p.rps)} | ${us(p)} | ${us(a)} | ` +
      `${bytesText(p.bytesPerReq)} | ${bytesText(a.bytesPerReq)} |`);
  }
  out.push("", "bytes/response: what wrk read per request, head included (medians).");
  return out;
}
const pct = (n) => (n == null ? "–" : `${Math.round(n)} %`);
const ratioText = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : "–");

function flagText(flags, rounds) {
  return Object.entries(FLAGS)
    .filter(([name]) => flags[name] > 0)
    .map(([name, [symbol]]) => (flags[name] === rounds ? symbol : `${symbol}${flags[name]}/${rounds}`))
    .join(" ");
}

/**
 * Takes { meta, settings, notes, scenarios, servers, unsupported, summary, targets, failures }, returns the
 * markdown report. `unsupported[scenario]` lists the servers that do not implement it: a row of "–".
 */
export function renderMarkdown({ meta, settings, notes, scenarios, servers, unsupported = {}, summary, targets, failures, quick }) {
  const out = [];
  out.push(`# uwserve benchmark — ${meta.date}`, "");
  out.push(`- CPU: ${meta.cpu} (${meta.cores} cores); server pinned to core ${settings.serverCore ?? "–"}, load generator to core ${settings.clientCore ?? "–"}`);
  out.push(`- Node ${meta.node}, ${meta.os}`);
  out.push(`- Load generator: ${meta.client}`);
  out.push(`- Method: ${settings.rounds} round(s), servers in random order per round, fresh server process per cell; ` +
    `warm-up ${settings.warmup} s, measure ${settings.duration} s; medians across rounds`);
  for (const note of notes) out.push(`- Note: ${note}`);
  out.push("");

  for (const scenario of scenarios) {
    const missing = unsupported[scenario.name] ?? [];
    if (!summary[scenario.name] && !missing.length) continue;
    const rows = summary[scenario.name] ?? {};
    const raw = rows["raw-uws"]?.rps;
    const node = rows["node-http"]?.rps;
    const extra = [scenario.tls && "over TLS", ...Object.entries(scenario.headers ?? {}).map(([k, v]) => `${k}: ${v}`)].filter(Boolean);
    out.push(`## ${scenario.name} — ${scenario.method ?? "GET"} ${scenario.path}${extra.length ? `, ${extra.join(", ")}` : ""} ` +
      `(${settings.connections ?? scenario.connections} connections)`, "");
    out.push("| server | req/s | ± | p99 | × raw uWS | × node:http | server CPU | client CPU | CPU µs/req | peak RSS | flags |");
    out.push("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    const ordered = servers.filter((s) => rows[s]).sort((a, b) => (rows[b].rps ?? 0) - (rows[a].rps ?? 0));
    for (const server of ordered) {
      const r = rows[server];
      out.push(`| ${server} | ${int(r.rps)} | ${r.spreadPct == null ? "–" : `${r.spreadPct.toFixed(0)} %`} | ` +
        `${r.p99Ms == null ? "–" : `${r.p99Ms.toFixed(2)} ms`} | ${ratioText(r.rps, raw)} | ${ratioText(r.rps, node)} | ` +
        `${pct(r.serverCpu)} | ${pct(r.clientCpu)} | ${r.cpuUsPerReq == null ? "–" : r.cpuUsPerReq.toFixed(1)} | ${r.peakRssMiB == null ? "–" : `${Math.round(r.peakRssMiB)} MiB`} | ${flagText(r.flags, r.rounds)} |`);
    }
    for (const server of servers.filter((s) => missing.includes(s))) {
      out.push(`| ${server} | – | – | – | – | – | – | – | – | – | ${scenario.absent ?? "not run"} |`);
    }
    out.push("");
    if (rows["uwserve-workers-1"]?.rps && rows["uwserve-workers-2"]?.rps) {
      const [one, two] = [rows["uwserve-workers-1"], rows["uwserve-workers-2"]];
      out.push(`Workers: uwserve-workers-2 ÷ uwserve-workers-1 = ${ratioText(two.rps, one.rps)} req/s with ${pct(two.serverCpu)} of server CPU ` +
        `against ${pct(one.serverCpu)}` + (rows.uwserve?.rps ? `; uwserve-workers-1 ÷ uwserve (no CLI) = ${ratioText(one.rps, rows.uwserve.rps)}` : "") +
        ". The 2-worker server shares core 1 with wrk (⇄): the gain is what a second thread adds on this machine with the load generator on it.", "");
    }
    const wire = wireLine(scenario, rows, ordered);
    if (wire) out.push(wire, "");
    if (scenario.pair && summary[scenario.pair]) out.push(...pairTable(scenario, rows, summary[scenario.pair], ordered), "");
  }

  out.push("Columns: req/s and p99 are medians across rounds; ± is half the min–max range of req/s as a % of the median; " +
    "CPU is % of one core over the steady part of the measurement; CPU µs/req is the server's CPU time per request " +
    "(lower is better; it still compares servers when the client was the limit); peak RSS is the server's VmHWM (max across rounds).", "");
  out.push("Flags (`k/n` = in k of n rounds):", "");
  for (const [symbol, text] of Object.values(FLAGS)) out.push(`- ${symbol} ${text}`);
  out.push("");

  const checked = targets.filter((t) => t.ratio !== null);
  if (checked.length && quick) {
    out.push("## uwserve targets", "", "Not checked: a --quick run is a smoke test, its ratios mean nothing.", "");
  } else if (checked.length) {
    out.push("## uwserve targets", "");
    out.push("Measured = ratio of median req/s (the target). By CPU/req = the baseline's server CPU per request over " +
      "uwserve's: the same comparison made from server cost alone, the better guide where a cell is client-bound (†).", "");
    out.push("| target | measured | by CPU/req | result | caveats |", "|---|--:|--:|---|---|");
    for (const t of checked) {
      out.push(`| ${t.label} | ${t.ratio.toFixed(2)}× | ` +
        `${t.cpuRatio == null ? "–" : `${t.cpuRatio.toFixed(2)}×`} | ${t.pass ? "PASS" : "**FAIL**"} | ${t.caveats.join(", ")} |`);
    }
    const passed = checked.filter((t) => t.pass).length;
    out.push("", `${passed} of ${checked.length} targets met` +
      (checked.length < targets.length ? ` (${targets.length - checked.length} not measured in this run)` : "") + ".", "");
  }

  if (failures.length) {
    out.push("## Failures", "");
    for (const f of failures) out.push(`- round ${f.round}, ${f.server}, ${f.scenario}: ${f.message}`);
    out.push("");
  }
  return out.join("\n");
}
