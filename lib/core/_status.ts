/** Status lines ("200 OK") built once, so the writer never formats one per request. */
import { STATUS_CODES } from "node:http";

export const STATUS_LINES: Record<number, string> = {};
for (const [code, text] of Object.entries(STATUS_CODES)) {
  STATUS_LINES[Number(code)] = `${code} ${text}`;
}

/** A status line with a custom (already validated) reason phrase. */
export function statusLine(status: number, statusText: string): string {
  return statusText ? `${status} ${statusText}` : (STATUS_LINES[status] ?? `${status} Unknown`);
}
