// The official openai SDK streams a chat completion through an ssegw route to the mock LLM.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startPair } from "./lib.mjs";

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
