// The demo chat page in a real browser: Debian's Chromium driven by playwright-core.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { relay, startPair } from "./lib.mjs";

const executablePath = "/usr/bin/chromium";
const shots = join(process.env.SSEGW_BIN_DIR, "..", "screenshots");

const config = (mockPort) => `
demo: { enabled: true }
upstreams:
  llm: { url: "http://127.0.0.1:${mockPort}" }
routes:
  - { path: /v1/chat/completions, upstream: llm, resumable: true, on_disconnect: continue }
`;

async function launch() {
  return chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

test("browser: the demo page streams a complete answer", { skip: !existsSync(executablePath) },
  async () => {
    const { gateway, stop } = await startPair(config);
    const browser = await launch();
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
      // 30 tokens, one every 30 ms: the answer visibly streams.
      await page.route("**/v1/chat/completions", (route) => route.continue({
        headers: { ...route.request().headers(), "x-mock-tokens": "30", "x-mock-interval-ms": "30" },
      }));
      await page.goto(`http://127.0.0.1:${gateway.port}/?prompt=hello%20gateway`);
      await page.waitForFunction(() => window.ssegwDemo && window.ssegwDemo.answers.length === 1,
                                 null, { timeout: 15000 });
      const expected = Array.from({ length: 30 }, (_, i) => `tok${i} `).join("");
      const state = await page.evaluate(() => window.ssegwDemo);
      assert.equal(state.answers[0], expected);
      assert.equal(state.duplicates, 0);
      assert.equal(await page.locator(".msg.assistant").last().textContent(), expected);
      mkdirSync(shots, { recursive: true });
      await page.screenshot({ path: join(shots, "demo-answer.png") });
    } finally {
      await browser.close();
      await stop();
    }
  });

test("browser: after a network drop the answer resumes where it stopped, each token once",
  { skip: !existsSync(executablePath) }, async () => {
    const { gateway, stop } = await startPair(config);
    const net = await relay(gateway.port);
    const browser = await launch();
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
      await page.route("**/v1/chat/completions", (route) => route.continue({
        headers: { ...route.request().headers(), "x-mock-tokens": "60", "x-mock-interval-ms": "40" },
      }));
      await page.goto(`http://127.0.0.1:${net.port}/?prompt=resume%20me`);
      // Some tokens in, cut every connection while the answer is still streaming.
      await page.waitForFunction(() => window.ssegwDemo && window.ssegwDemo.events >= 8, null,
                                 { timeout: 10000 });
      net.cut();
      const eventsAtCut = await page.evaluate(() => window.ssegwDemo.events);
      await page.waitForFunction(() => window.ssegwDemo.answers.length === 1, null,
                                 { timeout: 20000 });
      const expected = Array.from({ length: 60 }, (_, i) => `tok${i} `).join("");
      const state = await page.evaluate(() => window.ssegwDemo);
      assert.ok(eventsAtCut < 60, "the cut came before the end of the answer");
      assert.equal(state.answers[0], expected);
      assert.equal(state.duplicates, 0);
      assert.equal(state.events, 62);  // 60 tokens, the finishing chunk and [DONE], each once
      mkdirSync(shots, { recursive: true });
      await page.screenshot({ path: join(shots, "demo-resumed.png") });
    } finally {
      await browser.close();
      await net.close();
      await stop();
    }
  });
