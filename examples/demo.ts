// Quick-start demo: `npm start`, then open http://localhost:3000 (uwserve --port N picks another port).
import { Response, type Server } from "uwserve";
import { createChat } from "./chat/chat.js";

// A WebSocket chat at /chat: its page and socket routes, and the websocket handlers below.
const chat = createChat();

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const page = (title: string, body: string, status = 200): Response =>
  new Response(
    `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escape(title)}</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.6rem; } code, td:first-child { font-family: ui-monospace, monospace; font-size: .9em; }
  table { border-collapse: collapse; width: 100%; } td { border-top: 1px solid #eee; padding: .25rem .5rem; vertical-align: top; word-break: break-all; } td:first-child { white-space: nowrap; word-break: normal; }
  form { display: grid; gap: .5rem; max-width: 24rem; } input, textarea, button { font: inherit; padding: .3rem .5rem; }
  a { color: #0a58ca; } nav a { margin-right: 1rem; }
</style>
<h1>${escape(title)}</h1>
${body}`,
    { status, headers: { "content-type": "text/html; charset=utf-8" } },
  );

function home(req: Request, server: Server): Response {
  const ip = server.requestIP(req);
  const rows = [...req.headers].map(([name, value]) => `<tr><td>${escape(name)}</td><td>${escape(value)}</td></tr>`);
  return page(
    "Hello from uwserve",
    `<nav><a href="/chat">/chat</a><a href="/api/time">/api/time</a><a href="/stream">/stream</a><a href="/error">/error</a></nav>
<p><code>${escape(req.method)} ${escape(req.url)}</code> from <code>${escape(ip ? `${ip.address} (${ip.family})` : "unknown")}</code></p>
<table>${rows.join("")}</table>
<h2>Echo a form</h2>
<form method="post" action="/echo">
  <input name="name" placeholder="Your name" required>
  <textarea name="message" placeholder="A message"></textarea>
  <button>Send</button>
</form>`,
  );
}

async function echo(req: Request): Promise<Response> {
  const form = await req.formData();
  const rows = [...form].map(([name, value]) => `<tr><td>${escape(name)}</td><td>${escape(String(value))}</td></tr>`);
  return page("You sent", `<table>${rows.join("")}</table><p><a href="/">Back</a></p>`);
}

/** Ticks one line every 200 ms, ten times; `cancel` runs when the client goes away early. */
function stream(): Response {
  let timer: ReturnType<typeof setInterval>;
  const body = new ReadableStream<string>({
    start(controller) {
      let tick = 0;
      timer = setInterval(() => {
        controller.enqueue(`tick ${++tick} at ${new Date().toISOString()}\n`);
        if (tick === 10) {
          clearInterval(timer);
          controller.close();
        }
      }, 200);
    },
    cancel() {
      clearInterval(timer);
    },
  });
  // nosniff lets browsers render text/plain as it arrives instead of buffering it.
  return new Response(body.pipeThrough(new TextEncoderStream()), {
    headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
  });
}

export default {
  port: 3000,
  // Readable error pages with stacks, so /error shows what happened. Keep it off in production.
  development: true,
  routes: chat.routes,
  websocket: chat.websocket,
  fetch(req: Request, server: Server): Response | Promise<Response> {
    const { pathname } = new URL(req.url);
    if (pathname === "/") return home(req, server);
    if (pathname === "/echo" && req.method === "POST") return echo(req);
    if (pathname === "/api/time") return Response.json({ now: new Date().toISOString(), uptime: process.uptime() });
    if (pathname === "/stream") return stream();
    if (pathname === "/error") throw new Error("This error was thrown on purpose by /error");
    return page("Not found", `<p>Nothing at <code>${escape(pathname)}</code>. <a href="/">Home</a></p>`, 404);
  },
};
