/** The 500 responses uwserve sends on its own when a handler fails (request-time policy, H16-style). */

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Development: a readable page with the error and its stack. */
export function developmentErrorPage(error: unknown): { body: string; type: string } {
  const err = error instanceof Error ? error : new Error(String(error));
  const title = `${err.name}: ${err.message}`;
  const body =
    "<!doctype html><html><head><meta charset=utf-8><title>500 Internal Server Error</title>" +
    "<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}" +
    "h1{font-size:1.3rem;color:#b00020}pre{background:#f6f6f6;padding:1rem;overflow:auto;border-radius:6px}</style></head>" +
    `<body><h1>500 Internal Server Error</h1><p><strong>${escapeHtml(title)}</strong></p>` +
    `<pre>${escapeHtml(err.stack ?? title)}</pre>` +
    "<p><small>uwserve shows this page because <code>development</code> is on. In production the body is plain and hides the error.</small></p>" +
    "</body></html>";
  return { body, type: "text/html;charset=utf-8" };
}

/** Production: nothing about the error leaks. */
export const PRODUCTION_ERROR_BODY = "Internal Server Error";
