// The chat example's page (examples/chat/page.html) in a real browser: headless Chromium, driven by
// playwright-core, talks to the chat mounted in a uwserve server. CI installs Debian's chromium.
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChat } from "../examples/chat/chat.js";
import { start, trackServers } from "./helpers/server.js";

const CHROMIUM = "/usr/bin/chromium";
const STEP_MS = 5000;

const track = trackServers();

const HAVE_CHROMIUM = existsSync(CHROMIUM);
const TITLE = HAVE_CHROMIUM
  ? "chat page in headless Chromium"
  : `chat page in headless Chromium — skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does)`;

describe.skipIf(!HAVE_CHROMIUM)(TITLE, () => {
  let browser: Browser;

  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Opens the page in its own browser context (own storage), joins `room` as `name`. */
  async function joinAs(base: string, name: string, room: string): Promise<Page> {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error") problems.push(msg.text());
    });
    (page as Page & { problems?: string[] }).problems = problems;
    await page.goto(`${base}/chat`);
    // The chat panel shows only once joined (its CSS must not override the hidden attribute).
    expect(await page.isVisible("#chat")).toBe(false);
    await page.fill("#name", name);
    await page.fill("#room", room);
    await page.click("#join");
    await expectText(page, "#status", `Connected to ${room} as ${name}.`);
    expect(await page.isVisible("#chat")).toBe(true);
    return page;
  }

  async function send(page: Page, text: string): Promise<void> {
    await page.fill("#text", text);
    await page.click("#send");
  }

  /** Waits until the element's text contains `text`. */
  async function expectText(page: Page, selector: string, text: string): Promise<void> {
    await page.waitForFunction(
      ([sel, want]) => document.querySelector(sel)?.textContent?.includes(want) ?? false,
      [selector, text] as const,
      { timeout: STEP_MS },
    ).catch(async (err: Error) => {
      throw new Error(`${selector} never contained ${JSON.stringify(text)}; it has ${JSON.stringify(await page.textContent(selector))} (${err.message})`);
    });
  }

  const logOf = (page: Page): Promise<string[]> => page.$$eval("#log li", (items) => items.map((li) => li.textContent ?? ""));
  const membersOf = (page: Page): Promise<string[]> => page.$$eval("#members li", (items) => items.map((li) => li.textContent ?? ""));

  it("two pages in a room chat both ways; a page in another room sees none of it", { timeout: 60_000 }, async () => {
    const chat = createChat();
    const server = track(start({ routes: chat.routes, websocket: chat.websocket }));
    const base = `http://127.0.0.1:${server.port}`;

    const alice = await joinAs(base, "alice", "blue");
    const bob = await joinAs(base, "bob", "blue");
    const carol = await joinAs(base, "carol", "red");
    await expectText(alice, "#log", "bob joined.");
    await expectText(alice, "#members", "bob");
    expect(await membersOf(bob)).toEqual(["alice", "bob"]);
    expect(await membersOf(carol)).toEqual(["carol"]);

    await send(alice, "hi bob <b>not bold</b>");
    await expectText(bob, "#log", "alice: hi bob <b>not bold</b>");
    expect(await bob.$$eval("#log b:not(.who)", (els) => els.length)).toBe(0); // text, not markup
    await send(bob, "hi alice 👋");
    await expectText(alice, "#log", "bob: hi alice 👋");
    await expectText(bob, "#log", "bob: hi alice 👋"); // the sender sees its own message come back
    await expect(alice.inputValue("#text")).resolves.toBe("");

    await send(carol, "anyone in red?");
    await expectText(carol, "#log", "carol: anyone in red?");
    // carol's message went out after the blue ones came back, so by the time it returns to her
    // any stray blue message would have reached her page already (and likewise the other way).
    await send(alice, "last one in blue");
    await expectText(bob, "#log", "alice: last one in blue");
    const carolLog = (await logOf(carol)).join("\n");
    expect(carolLog).not.toContain("alice");
    expect(carolLog).not.toContain("bob");
    for (const page of [alice, bob]) expect((await logOf(page)).join("\n")).not.toContain("carol");

    // A newcomer to blue gets the history; a page that leaves is announced.
    const dave = await joinAs(base, "dave", "blue");
    const daveLog = (await logOf(dave)).join("\n");
    expect(daveLog).toContain("alice: hi bob <b>not bold</b>");
    expect(daveLog).toContain("bob: hi alice 👋");
    expect(daveLog).not.toContain("carol");
    await bob.context().close();
    await expectText(alice, "#log", "bob left.");
    await expectText(dave, "#log", "bob left.");
    expect(await membersOf(alice)).toEqual(["alice", "dave"]);

    // Moving rooms on the page: alice goes to red, carol sees her arrive.
    await alice.fill("#room", "red");
    await alice.click("#join");
    await expectText(alice, "#status", "Connected to red as alice.");
    await expectText(carol, "#log", "alice joined.");
    await expectText(dave, "#log", "alice left.");
    expect((await logOf(alice)).join("\n")).toContain("carol: anyone in red?");
    await send(carol, "welcome alice");
    await expectText(alice, "#log", "carol: welcome alice");

    for (const page of [alice, carol, dave]) {
      expect((page as Page & { problems?: string[] }).problems).toEqual([]);
      await page.context().close();
    }
  });
});
