// A multi-channel stream (GET /v1/events?channel=...) in the npm `eventsource` package: each
// channel's events reach addEventListener("<channel>") and addEventListener("<channel>:<type>"),
// and after a network drop the package's own reconnect (Last-Event-ID: the stream cursor)
// resumes every channel exactly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import EventSource from "eventsource";
import { publish, relay, startGateway, waitFor, waitSubscribers } from "./lib.mjs";

test("multi-channel: addEventListener per channel, and an exact resume after a network drop",
  { timeout: 30000 }, async () => {
    const { port, stop } = await startGateway("retry: 200ms\n");
    const net = await relay(port);
    const channels = ["mc.a", "mc.b", "mc.c"];
    const es = new EventSource(
      `http://127.0.0.1:${net.port}/v1/events?${channels.map((c) => `channel=${c}`).join("&")}`);
    const seen = [];
    let opens = 0;
    const record = (e) => seen.push({ type: e.type, data: e.data, id: e.lastEventId });
    for (const c of channels) {
      es.addEventListener(c, record);
      es.addEventListener(`${c}:tick`, record);
    }
    const plain = [];
    es.onmessage = (e) => plain.push(e.data);  // none: every event is typed by its channel
    es.onopen = () => opens++;
    const sent = [];
    try {
      await waitFor(() => opens === 1, 5000, "open");
      for (const c of channels) await waitSubscribers(port, c, 1);
      // 90 events round-robin over the three channels, published straight to the gateway, so
      // that they keep coming while the client is cut off and reconnects.
      const publishing = (async () => {
        for (let i = 0; i < 90; i++) {
          const c = channels[i % 3];
          const type = i % 7 === 0 ? "tick" : "";
          await publish(port, c, `${c} #${i}`, type);
          sent.push({ type: type ? `${c}:${type}` : c, data: `${c} #${i}` });
          await sleep(10);
        }
      })();
      await waitFor(() => seen.length >= 20, 5000, "20 events before the cut");
      net.cut();
      await publishing;
      await waitFor(() => seen.length >= 90, 10000, "all 90 events");
      await sleep(200);  // a duplicate would arrive by now
      assert.deepEqual(plain, []);
      assert.equal(opens, 2);
      assert.equal(net.requests.length, 2);
      assert.match(net.requests[1], /\r\nLast-Event-ID: \d+(_(x|\d+(-\d+)?)){3}\r\n/i);
      // Per channel, exactly what was published, in order; the order across channels is free.
      for (const c of channels) {
        const mine = (list) => list.filter((e) => e.type.split(":")[0] === c)
          .map((e) => `${e.type} ${e.data}`);
        assert.deepEqual(mine(seen), mine(sent), c);
      }
    } finally {
      es.close();
      await net.close();
      assert.equal(await stop(), 0);
    }
  });
