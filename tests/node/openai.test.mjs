// The official openai SDK streams a chat completion through an ssegw route to the mock LLM.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startPair } from "./lib.mjs";
import { setTimeout as sleep } from "node:timers/promises";

const config = (resumable) => (mockPort) => `
upstreams:
  llm: { url: "http://127.0.0.1:${mockPort}" }
routes:
  - { path: /v1/chat/completions, upstream: llm, resumable: ${resumable} }
`;

async function collect(client, headers = {}) {
  const stream = await client.chat.completions.create(
    { model: "mock", stream: true, messages: [{ role: "user", content: "say something" }] },
    { headers },
  );
  let text = "";
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  return { text, chunks };
}

test("openai SDK streams a chat completion through a route", async () => {
  const { gateway, stop } = await startPair(config(false));
  try {
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${gateway.port}/v1`, apiKey: "sk-test" });
    const { text, chunks } = await collect(client, { "X-Mock-Tokens": "12", "X-Mock-Interval-Ms": "5" });
    assert.equal(text, Array.from({ length: 12 }, (_, i) => `tok${i} `).join(""));
    assert.equal(chunks, 13);  // 12 tokens and the final chunk with finish_reason (no usage: the client did not ask)
  } finally {
    await stop();
  }
});

test("openai SDK reads a resumable route (id: lines added by the gateway)", async () => {
  const { gateway, stop } = await startPair(config(true));
  try {
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${gateway.port}/v1`, apiKey: "sk-test" });
    const { text } = await collect(client, { "X-Mock-Tokens": "5", "X-Mock-Interval-Ms": "5" });
    assert.equal(text, "tok0 tok1 tok2 tok3 tok4 ");
  } finally {
    await stop();
  }
});

test("openai SDK sees an upstream 429 as a RateLimitError", async () => {
  const { gateway, stop } = await startPair(config(false));
  try {
    const client = new OpenAI({
      baseURL: `http://127.0.0.1:${gateway.port}/v1`, apiKey: "sk-test", maxRetries: 0 });
    await assert.rejects(collect(client, { "X-Mock-Status": "429" }), (err) => {
      assert.equal(err.status, 429);
      return true;
    });
  } finally {
    await stop();
  }
});

// ---- budgets (docs/protocol.md#budgets): the SDK's own 429 handling against the gateway's ----

const budgetKey = "team-token-0123456789";
const budgetConfig = (limits) => (mockPort) => `
auth:
  keys:
    - { name: team, token: "${budgetKey}", routes: ["/v1/*"], ${limits} }
upstreams:
  llm: { url: "http://127.0.0.1:${mockPort}" }
routes:
  - { path: /v1/chat/completions, upstream: llm }
`;

// One sample of GET /metrics, undefined when absent.
async function metric(port, series) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function waitMetric(port, series, value, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await metric(port, series);
    if (last === value) return;
    await sleep(10);
  }
  throw new Error(`${series} is ${last} after ${timeoutMs} ms, want ${value}`);
}

const running = 'ssegw_budget_running{key="team"}';

test("openai SDK retries a budget's 429 after its Retry-After and is then served", async () => {
  const { gateway, stop } = await startPair(budgetConfig("max_concurrent: 1"));
  const base = `http://127.0.0.1:${gateway.port}/v1`;
  try {
    // One answer that stays open holds the key's only slot.
    const hold = new AbortController();
    const held = await fetch(`${base}/chat/completions?tokens=100&stall_after=1&stall_ms=60000`, {
      method: "POST", signal: hold.signal,
      headers: { Authorization: `Bearer ${budgetKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ model: "mock", stream: true, messages: [] }),
    });
    assert.equal(held.status, 200);
    const heldReader = held.body.getReader();
    await heldReader.read();
    await waitMetric(gateway.port, running, 1);

    // The SDK's fetch, watched: at the first 429 the held answer ends (its slot comes back), so
    // that the retry the SDK makes after Retry-After is served.
    const calls = [];
    const watched = async (url, init) => {
      const call = { sentAt: Date.now(), retryCount: new Headers(init.headers).get("x-stainless-retry-count") };
      calls.push(call);
      const res = await fetch(url, init);
      call.status = res.status;
      call.retryAfter = res.headers.get("retry-after");
      if (res.status === 429) {
        hold.abort();
        await heldReader.cancel().catch(() => {});
        await waitMetric(gateway.port, running, 0);
      }
      call.returnedAt = Date.now();
      return res;
    };
    const client = new OpenAI({ baseURL: base, apiKey: budgetKey, maxRetries: 1, fetch: watched });
    const { text } = await collect(client, { "X-Mock-Tokens": "4", "X-Mock-Interval-Ms": "5" });
    assert.equal(text, "tok0 tok1 tok2 tok3 ");
    assert.deepEqual(calls.map((c) => [c.status, c.retryAfter, c.retryCount]),
                     [[429, "1", "0"], [200, null, "1"]]);
    // The SDK waited what Retry-After said (1 s), from the 429 it was handed to its retry.
    const waited = calls[1].sentAt - calls[0].returnedAt;
    assert.ok(waited >= 990 && waited < 3000, `the SDK retried after ${waited} ms`);
    assert.equal(await metric(gateway.port, 'ssegw_budget_refusals_total{key="team",reason="too_many_streams"}'), 1);
  } finally {
    await stop();
  }
});

test("openai SDK sees an exhausted token budget as a RateLimitError with its code and Retry-After", async () => {
  const { gateway, stop } = await startPair(budgetConfig("tokens_per_minute: 10"));
  try {
    const client = new OpenAI({
      baseURL: `http://127.0.0.1:${gateway.port}/v1`, apiKey: budgetKey, maxRetries: 0 });
    // 3 prompt and 12 completion tokens, as the mock's usage chunk reports them: 15 of 10.
    await collect(client, { "X-Mock-Tokens": "12", "X-Mock-Prompt-Tokens": "3", "X-Mock-Interval-Ms": "1" });
    await waitMetric(gateway.port, 'ssegw_budget_tokens_charged_total{key="team"}', 15);
    const before = Date.now();
    await assert.rejects(collect(client), (err) => {
      const after = Date.now();
      assert.ok(err instanceof OpenAI.RateLimitError);
      assert.equal(err.status, 429);
      assert.equal(err.code, "token_budget_exhausted");
      assert.equal(err.message, "429 this key has used its tokens_per_minute for this minute");
      // The seconds to the end of the wall-clock minute, rounded up.
      const toMinuteEnd = (ms) => Math.ceil((60000 - (ms % 60000)) / 1000);
      const retryAfter = Number(err.headers.get("retry-after"));
      assert.ok(retryAfter <= toMinuteEnd(before) && retryAfter >= toMinuteEnd(after),
                `Retry-After ${retryAfter}`);
      return true;
    });
  } finally {
    await stop();
  }
});
