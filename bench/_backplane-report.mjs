// The report of bench/backplane.mjs: medians per server × scenario, the targets, markdown.
import { groupCells, median, roundStats } from "./_report.mjs";

/** Flag symbols, in the order they are printed, with their legend line. */
export const FLAGS = {
  failed: ["✗", "failed: a subscriber missed, repeated or garbled a message, a connection closed, a process died, or nothing was delivered (see Failures)"],
  clientHeavy: ["†", "client-heavy: core 1 (B + client) was ≥ 90 % busy and the client used at least as much of it as B: deliveries/s understates B"],
  unsaturated: ["‡", "unsaturated: neither core reached 80 %: waits (the window's round trip, the broker) limited the rate, not CPU"],
  noisy: ["~", "noisy: something outside the cell used ≥ 10 % of core 0 or core 1, or the hypervisor stole ≥ 10 % of one"],
};

export function summarize(cells) {
  const summary = {};
  for (const group of groupCells(cells)) {
    const { scenario, server } = group[0];
    const latency = group[0].p50Us !== undefined || scenario === "latency";
    const { measured, value, spreadPct, flags } = roundStats(group, latency ? "p50Us" : "rate", Object.keys(FLAGS));
    const m = (f) => median(measured.map(f));
    (summary[scenario] ??= {})[server] = {
      rounds: group.length, rate: latency ? null : value, spreadPct, flags,
      messageRate: m((c) => c.messageRate),
      cpu: Object.fromEntries(["a", "broker", "b", "client"].map((k) => [k, m((c) => c.cpu?.[k])])),
      busy: [0, 1].map((i) => m((c) => c.busy?.[i])),
      brokerUsPerMsg: m((c) => c.brokerUsPerMsg),
      // A's CPU per published message and B's per delivery: compare the sides where the rate is bound elsewhere.
      aUsPerMsg: m((c) => (c.cpu?.a == null || !c.messageRate ? null : (c.cpu.a / 100) * 1e6 / c.messageRate)),
      bNsPerDelivery: m((c) => (c.cpu?.b == null || !c.rate ? null : (c.cpu.b / 100) * 1e9 / c.rate)),
      p50Us: m((c) => c.p50Us), p99Us: m((c) => c.p99Us), samples: m((c) => c.samples),
      p50Range: latency && measured.length ? [Math.min(...measured.map((c) => c.p50Us)), Math.max(...measured.map((c) => c.p50Us))] : null,
      maxLagUs: Math.max(0, ...measured.map((c) => c.maxLagUs ?? 0)),
    };
  }
  return summary;
}

const caveats = (pairs) => pairs.flatMap(([who, s]) => (s ? Object.entries(FLAGS).filter(([k]) => s.flags[k]).map(([, [sym]]) => `${who} ${sym}`) : []));
export const pct = (n) => (n == null ? "–" : `${Math.round(n)} %`);
export const int = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US"));
const ratio = (a, b) => (a && b ? a / b : null);
const times = (r) => (r == null ? "–" : `${r.toFixed(2)}×`);
export const us = (n) => (n == null ? "–" : `${Math.round(n).toLocaleString("en-US")} µs`);
const signed = (n) => (n == null ? "–" : `${n >= 0 ? "+" : "−"}${Math.abs(Math.round(n)).toLocaleString("en-US")} µs`);

/** Why a throughput cell stopped where it did, from its CPU split. */
function limitOf(r) {
  if (!r) return "not measured";
  const [c0, c1] = r.busy;
  const parts = `core 0 ${pct(c0)} (A ${pct(r.cpu.a)}, broker ${pct(r.cpu.broker)}), core 1 ${pct(c1)} (B ${pct(r.cpu.b)}, client ${pct(r.cpu.client)})`;
  const side = c0 >= 90 && c0 >= c1 ? "the publish side (core 0) was saturated" : c1 >= 90 ? "the delivery side (core 1) was saturated" : "neither core was saturated";
  return `${side}: ${parts}`;
}

export function targetList(scenarios, summary) {
  const t = [];
  for (const sc of scenarios) {
    const rows = summary[sc.name] ?? {};
    const base = sc.kind === "latency" ? rows["uwserve-local"] : rows["socketio-redis"];
    for (const name of ["uwserve-redis", "uwserve-nats"]) {
      const r = rows[name];
      if (sc.kind === "latency") {
        const added = r?.p50Us != null && base?.p50Us != null ? r.p50Us - base.p50Us : null;
        t.push({ label: `${name} p50 − uwserve-local p50 ≤ 1 ms (${sc.name})`, measured: signed(added), pass: added == null ? null : added <= 1000,
          caveats: caveats([[name, r], ["uwserve-local", base]]), why: `p50 ${us(r?.p50Us)} against ${us(base?.p50Us)}; p99 ${us(r?.p99Us)} against ${us(base?.p99Us)}` });
      } else {
        const x = ratio(r?.rate, base?.rate);
        t.push({ label: `${name} ${sc.name} ≥ 3× socketio-redis deliveries/s`, measured: times(x), pass: x == null ? null : x >= 3,
          caveats: caveats([[name, r], ["socketio-redis", base]]), why: `${name}: ${limitOf(r)}; socketio-redis: ${limitOf(base)}` });
      }
    }
  }
  return t;
}

export function renderMarkdown({ meta, settings, notes, scenarios, servers, summary, targets, failures, quick }) {
  const out = [`# uwserve backplane benchmark — ${meta.date}`, ""];
  out.push(`- CPU: ${meta.cpu} (${meta.cores} cores); ${settings.pinned ? "core 0: process A (publisher) + the broker; core 1: process B (subscribers' server) + the client. uwserve-local: its one process on core 0, the client on core 1" : "not pinned"}`);
  out.push(`- Node ${meta.node}, ${meta.os}; ${meta.brokers.join("; ")} (started for this run on free ports, no persistence)`);
  out.push(`- Peers: ${meta.peers}; uwserve from dist/ with \`backplane: "<broker URL>"\` (default options)`);
  out.push("- Client: `bench/_backplane-procs.mjs client`, one Node process of raw WebSocket connections to B (socket.io: engine.io v4 / socket.io v5 framing, not socket.io-client); every subscriber's messages checked for order, gaps and duplicates");
  out.push(`- Method: ${settings.rounds} round(s), servers in random order per round, fresh A, B and client per cell; fan-out: A keeps a window of ${settings.size}-byte messages in flight until every subscriber has them (the client acknowledges to A over TCP), ${settings.window ? `${settings.window} messages` : "min(1,024, 32,768 ÷ subscribers) messages"}, warm-up ${settings.warmup} s, measure ${settings.duration} s; latency: A publishes ${int(settings.rate)} messages/s on a timer, 1 subscriber, measure ${settings.latencyDuration} s; medians across rounds`);
  for (const note of notes) out.push(`- Note: ${note}`);
  out.push("");
  const order = (rows) => servers.filter((s) => rows[s]);
  for (const sc of scenarios) {
    const rows = summary[sc.name];
    if (!rows) continue;
    out.push(`## ${sc.name} — ${sc.title}`, "");
    if (sc.kind === "latency") {
      const local = rows["uwserve-local"];
      out.push("| server | p50 | p99 | p50 − uwserve-local | p99 − uwserve-local | p50 min–max | samples | A CPU | broker CPU | B CPU | flags |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
      for (const s of order(rows).sort((a, b) => (rows[a].p50Us ?? Infinity) - (rows[b].p50Us ?? Infinity))) {
        const r = rows[s];
        const self = s === "uwserve-local";
        out.push(`| ${s} | ${us(r.p50Us)} | ${us(r.p99Us)} | ${self ? "–" : signed(local ? r.p50Us - local.p50Us : null)} | ${self ? "–" : signed(local ? r.p99Us - local.p99Us : null)} | ` +
          `${r.p50Range ? `${int(r.p50Range[0])}–${int(r.p50Range[1])} µs` : "–"} | ${int(r.samples)} | ${pct(r.cpu.a)} | ${pct(r.cpu.broker)} | ${pct(r.cpu.b)} | ${flagText(r.flags, r.rounds)} |`);
      }
      const late = order(rows).filter((s) => rows[s].maxLagUs > 5000);
      if (late.length) out.push("", `The publisher's timer ran over 5 ms behind its schedule with: ${late.join(", ")} (a late tick sends the messages due as a burst).`);
      out.push("");
      continue;
    }
    const sio = rows["socketio-redis"]?.rate;
    const wsr = rows["ws-redis"]?.rate;
    out.push("| server | deliveries/s | ± | messages/s | × socketio-redis | × ws-redis | A CPU | broker CPU | B CPU | client CPU | broker µs/msg | A µs/msg | B ns/delivery | flags |");
    out.push("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for (const s of order(rows).sort((a, b) => (rows[b].rate ?? 0) - (rows[a].rate ?? 0))) {
      const r = rows[s];
      out.push(`| ${s} | ${int(r.rate)} | ${r.spreadPct == null ? "–" : `${r.spreadPct.toFixed(0)} %`} | ${int(r.messageRate)} | ${times(ratio(r.rate, sio))} | ${times(ratio(r.rate, wsr))} | ` +
        `${pct(r.cpu.a)} | ${pct(r.cpu.broker)} | ${pct(r.cpu.b)} | ${pct(r.cpu.client)} | ${r.brokerUsPerMsg == null ? "–" : r.brokerUsPerMsg.toFixed(2)} | ` +
        `${r.aUsPerMsg == null ? "–" : r.aUsPerMsg.toFixed(2)} | ${int(r.bNsPerDelivery)} | ${flagText(r.flags, r.rounds)} |`);
    }
    out.push("");
  }
  const fan = scenarios.filter((sc) => sc.kind === "fanout" && summary[sc.name]);
  if (fan.length) {
    out.push("## Ratios and broker cost", "", "Deliveries/s ratios (medians) and the broker's CPU time per published message (µs, utime + stime of redis-server / nats-server from /proc over the measured phase ÷ messages A published):", "");
    const names = ["uwserve-redis", "uwserve-nats", "socketio-redis", "ws-redis"];
    out.push(`| subscribers | uwserve-redis ÷ socketio-redis | uwserve-nats ÷ socketio-redis | uwserve-redis ÷ ws-redis | uwserve-nats ÷ ws-redis |${names.map((n) => ` broker µs/msg ${n} |`).join("")}`);
    out.push(`|--:|--:|--:|--:|--:|${names.map(() => "--:|").join("")}`);
    for (const sc of fan) {
      const r = summary[sc.name];
      const x = (a, b) => times(ratio(r[a]?.rate, r[b]?.rate));
      out.push(`| ${sc.subscribers} | ${x("uwserve-redis", "socketio-redis")} | ${x("uwserve-nats", "socketio-redis")} | ${x("uwserve-redis", "ws-redis")} | ${x("uwserve-nats", "ws-redis")} |` +
        names.map((n) => ` ${r[n]?.brokerUsPerMsg == null ? "–" : r[n].brokerUsPerMsg.toFixed(2)} |`).join(""));
    }
    out.push("", "The broker's cost per message is best read where messages/s is highest (1 subscriber): with many subscribers " +
      "A publishes a few thousand messages/s and the figure rests on a handful of 10 ms /proc ticks.", "");
  }
  out.push("Columns: deliveries/s = messages the subscribers received per second, all of them together; messages/s = messages A published per second; " +
    "CPU = % of one core over the measured phase (/proc/<pid>/stat); A µs/msg = A's CPU per published message; B ns/delivery = B's CPU per delivery. " +
    "Latency: process.hrtime (CLOCK_MONOTONIC, shared by the processes) in A just before publish, in the client when it reads the frame; p50/p99 are each round's percentile, median across rounds.", "");
  out.push("Flags (`k/n` = in k of n rounds):", "", ...Object.values(FLAGS).map(([sym, text]) => `- ${sym} ${text}`), "");
  const checked = targets.filter((t) => t.pass !== null);
  if (checked.length) {
    out.push("## Targets", "");
    if (quick) out.push("A --quick run: a smoke test, these verdicts mean nothing.", "");
    out.push("| target | measured | result | caveats |", "|---|--:|---|---|");
    for (const t of checked) out.push(`| ${t.label} | ${t.measured} | ${t.pass ? "PASS" : "**FAIL**"} | ${t.caveats.join(", ")} |`);
    out.push("", `${checked.filter((t) => t.pass).length} of ${checked.length} targets met. Broker CPU per message: reported above (no target).`, "");
    const missed = checked.filter((t) => !t.pass);
    if (missed.length) out.push("Why the missed ones missed (medians):", "", ...missed.map((t) => `- ${t.label}: ${t.why}.`), "");
  }
  if (failures.length) out.push("## Failures", "", ...failures.map((f) => `- round ${f.round}, ${f.server}, ${f.scenario}: ${f.message}`), "");
  return out.join("\n");
}

export function flagText(flags, rounds) {
  return Object.entries(FLAGS).filter(([k]) => flags[k] > 0).map(([k, [sym]]) => (flags[k] === rounds ? sym : `${sym}${flags[k]}/${rounds}`)).join(" ");
}

