// The npm `eventsource` package (v2, the EventSource of Node programs) consumes ssegw channels,
// and reconnects on its own with Last-Event-ID after a network drop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import EventSource from "eventsource";
import { publish, relay, startGateway, startPair, waitFor, waitSubscribers } from "./lib.mjs";

// A short retry: the package waits this long (the gateway's "retry:" field) before reconnecting.
const gatewayYaml = "retry: 200ms\n";

// Opens an EventSource and records what it sees. `types` are the event types to listen to besides
// "message".
function listen(url, { types = [], headers } = {}) {
  const es = new EventSource(url, headers ? { headers } : undefined);
  const seen = { es, events: [], opens: 0, errors: [], idsAtError: [] };
  const record = (e) => seen.events.push({ type: e.type, id: e.lastEventId, data: e.data });
  es.onmessage = record;
  for (const type of types) es.addEventListener(type, record);
  es.onopen = () => seen.opens++;
  es.onerror = (e) => {
    seen.errors.push(e);
    seen.idsAtError.push(seen.events.at(-1)?.id);
  };
  return seen;
}

const eventId = /^(\d+)-(\d+)$/;
function assertIncreasing(ids) {
  for (let i = 1; i < ids.length; i++) {
    const [ams, aseq] = eventId.exec(ids[i - 1]).slice(1).map(BigInt);
    const [bms, bseq] = eventId.exec(ids[i]).slice(1).map(BigInt);
    assert.ok(bms > ams || (bms === ams && bseq > aseq), `${ids[i - 1]} < ${ids[i]}`);
  }
}

test("eventsource: published events arrive in order with their ids, types and lines",
  { timeout: 20000 }, async () => {
    const { port, stop } = await startGateway(gatewayYaml);
    const ch = "es-order";
    const seen = listen(`http://127.0.0.1:${port}/v1/channels/${ch}/events`, { types: ["tick"] });
    const sent = [];
    try {
      await waitFor(() => seen.opens === 1, 5000, "open");
      await waitSubscribers(port, ch, 1);
      for (let i = 0; i < 20; i++) {
        const type = i % 4 === 3 ? "tick" : "";
        const data = i % 5 === 0 ? `line ${i}a\nline ${i}b` : `event ${i} ✓`;
        const answer = await publish(port, ch, data, type);
        assert.equal(answer.subscribers, 1);
        sent.push({ type: type || "message", id: answer.id, data });
      }
      await waitFor(() => seen.events.length >= sent.length, 5000, "20 events");
      await sleep(100);  // nothing more may come
      assert.deepEqual(seen.events, sent);
      assertIncreasing(sent.map((e) => e.id));
      assert.equal(seen.errors.length, 0);
      assert.equal(seen.es.readyState, EventSource.OPEN);
    } finally {
      seen.es.close();
      assert.equal(await stop(), 0);
    }
  });

test("eventsource: after a network drop mid-stream it reconnects with Last-Event-ID, each event once",
  { timeout: 20000 }, async () => {
    const { port, stop } = await startGateway(gatewayYaml);
    const net = await relay(port);
    const ch = "es-drop";
    const seen = listen(`http://127.0.0.1:${net.port}/v1/channels/${ch}/events`);
    const sent = [];
    let eventsAtCut = -1;
    try {
      await waitFor(() => seen.opens === 1, 5000, "open");
      await waitSubscribers(port, ch, 1);
      // 60 events, one every 15 ms, published straight to the gateway (not through the relay),
      // so they keep coming while the client is cut off and reconnecting.
      const publishing = (async () => {
        for (let i = 0; i < 60; i++) {
          sent.push(await publish(port, ch, `event ${i}`));
          await sleep(15);
        }
      })();
      await waitFor(() => seen.events.length >= 12, 5000, "12 events before the cut");
      net.cut();
      eventsAtCut = seen.events.length;
      await publishing;
      await waitFor(() => seen.events.length >= 60, 10000, "all 60 events");
      await sleep(200);  // a duplicate would arrive by now

      assert.ok(eventsAtCut < 50, `the cut came mid-stream (after ${eventsAtCut} events)`);
      assert.deepEqual(seen.events.map((e) => e.id), sent.map((a) => a.id));
      assert.deepEqual(seen.events.map((e) => e.data), sent.map((_, i) => `event ${i}`));
      // One drop, one reconnect, through the relay: the second request carries the id of the
      // last event the package had seen when the connection broke.
      assert.equal(seen.errors.length, 1);
      assert.equal(seen.opens, 2);
      assert.equal(net.requests.length, 2);
      assert.doesNotMatch(net.requests[0], /last-event-id/i);
      const resumeFrom = seen.idsAtError[0];
      assert.match(net.requests[1], new RegExp(`\\r\\nLast-Event-ID: ${resumeFrom}\\r\\n`, "i"));
      // The events published while it was away came from the history.
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const replayed = Number(/^ssegw_replayed_events_total (\S+)$/m.exec(metrics)[1]);
      const missed = sent.length - 1 - sent.findIndex((a) => a.id === resumeFrom);
      assert.ok(replayed > 0 && replayed <= missed, `replayed ${replayed} of ${missed}`);
    } finally {
      seen.es.close();
      await net.close();
      assert.equal(await stop(), 0);
    }
  });

test("eventsource: an initial Last-Event-ID header resumes after that id", { timeout: 20000 },
  async () => {
    const { port, stop } = await startGateway(gatewayYaml);
    const ch = "es-resume";
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push((await publish(port, ch, `old ${i}`)).id);
    const seen = listen(`http://127.0.0.1:${port}/v1/channels/${ch}/events`,
                        { headers: { "Last-Event-ID": ids[2] } });
    try {
      await waitFor(() => seen.events.length >= 3, 5000, "3 replayed events");
      await waitSubscribers(port, ch, 1);
      const live = (await publish(port, ch, "live")).id;
      await waitFor(() => seen.events.length >= 4, 5000, "the live event");
      await sleep(100);
      assert.deepEqual(seen.events.map((e) => e.id), [ids[3], ids[4], ids[5], live]);
      assert.deepEqual(seen.events.map((e) => e.data), ["old 3", "old 4", "old 5", "live"]);
    } finally {
      seen.es.close();
      assert.equal(await stop(), 0);
    }
  });

test("eventsource: a finished generation ends, and the reconnect's 204 stops the package",
  { timeout: 20000 }, async () => {
    const { gateway, stop } = await startPair((mockPort) => `
retry: 200ms
upstreams:
  llm: { url: "http://127.0.0.1:${mockPort}" }
routes:
  - { path: /v1/chat/completions, upstream: llm, resumable: true, on_disconnect: continue }
`);
    let seen;
    try {
      const res = await fetch(`http://127.0.0.1:${gateway.port}/v1/chat/completions`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Prefer: "respond-async",
                   "X-Mock-Tokens": "8", "X-Mock-Interval-Ms": "20" },
        body: JSON.stringify({ model: "mock", stream: true,
                               messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(res.status, 202);
      const { channel } = await res.json();
      seen = listen(`http://127.0.0.1:${gateway.port}/v1/channels/${channel}/events`);
      await waitFor(() => seen.es.readyState === EventSource.CLOSED, 10000, "the package to stop");
      const text = seen.events
        .filter((e) => e.data !== "[DONE]")
        .map((e) => JSON.parse(e.data).choices?.[0]?.delta?.content ?? "")
        .join("");
      assert.equal(text, Array.from({ length: 8 }, (_, i) => `tok${i} `).join(""));
      assert.equal(seen.events.at(-1).data, "[DONE]");
      assert.equal(new Set(seen.events.map((e) => e.id)).size, seen.events.length);
      // The stream ended (an error event, then a reconnect with the final id), and that
      // reconnect was answered 204, which the package takes as "stop".
      assert.equal(seen.errors.length, 2);
      assert.equal(seen.errors[1].status, 204);
      assert.equal(seen.opens, 1);
    } finally {
      seen?.es.close();
      await stop();
    }
  });
