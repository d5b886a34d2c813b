// Node's own fetch() streams ssegw channels the way @microsoft/fetch-event-source does: read the
// body as a stream, split it into lines, assemble events, and reconnect by hand with the
// Last-Event-ID header (or ?last_event_id= where headers cannot be set).
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { publish, relay, startGateway, waitFor, waitSubscribers } from "./lib.mjs";

// The line parser of fetch-event-source's parse.ts, on decoded text: CR, LF and CRLF end a line;
// "field: value" loses one space after the colon; a blank line dispatches; ":" lines are comments.
class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.skipLf = false;  // the last chunk ended in CR: a LF first in the next one belongs to it
    this.lastEventId = "";
    this.retry = undefined;
    this.comments = 0;
    this.reset();
  }

  reset() {
    this.data = [];
    this.type = "";
    this.id = undefined;
  }

  feed(text) {
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (this.skipLf) {
        this.skipLf = false;
        if (c === "\n") {
          start = i + 1;
          continue;
        }
      }
      if (c === "\r" || c === "\n") {
        this.line(this.buffer.slice(start, i));
        start = i + 1;
        this.skipLf = c === "\r";
      }
    }
    this.buffer = this.buffer.slice(start);
  }

  line(line) {
    if (line === "") {
      if (this.data.length > 0) {
        this.onEvent({ id: this.id, event: this.type || "message", data: this.data.join("\n") });
      }
      this.reset();
      return;
    }
    if (line.startsWith(":")) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.type = value;
    else if (field === "id" && !value.includes("\0")) this.id = this.lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
  }
}

// One fetch() of a stream. `ended` resolves to "end" when the server ends the body, "error" on a
// network error (the drop) and "aborted" after abort(). Events go to `events`, and to onEvent when
// given.
async function openStream(url, { headers = {}, onEvent } = {}) {
  const controller = new AbortController();
  const res = await fetch(url, {
    headers: { Accept: "text/event-stream", ...headers },
    signal: controller.signal,
  });
  const s = { res, events: [], abort: () => controller.abort() };
  s.parser = new SseParser((e) => {
    s.events.push(e);
    onEvent?.(e);
  });
  s.ended = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const bytes of res.body) s.parser.feed(decoder.decode(bytes, { stream: true }));
      return "end";
    } catch (err) {
      return controller.signal.aborted ? "aborted" : "error";
    }
  })();
  return s;
}

const url = (port, ch, query = "") =>
  `http://127.0.0.1:${port}/v1/channels/${ch}/events${query ? "?" + query : ""}`;

test("fetch: streams a channel through a line parser: head, retry, events, heartbeats",
  { timeout: 20000 }, async () => {
    const { port, stop } = await startGateway("retry: 300ms\nheartbeat: 300ms\n");
    const ch = "fetch-basic";
    let s;
    try {
      s = await openStream(url(port, ch));
      assert.equal(s.res.status, 200);
      assert.equal(s.res.headers.get("content-type"), "text/event-stream; charset=utf-8");
      assert.equal(s.res.headers.get("cache-control"), "no-cache, no-transform");
      assert.equal(s.res.headers.get("x-accel-buffering"), "no");
      assert.equal(s.res.headers.get("content-encoding"), null);
      await waitSubscribers(port, ch, 1);
      const payloads = [
        "plain",
        "two\nlines",
        "crlf\r\nand\rcr",  // every line break splits the payload into data lines
        "utf-8: héllo ✓ 🚀",
        "  leading spaces kept",
        "",
      ];
      const sent = [];
      for (const [i, data] of payloads.entries()) {
        const type = i === 3 ? "chat.delta" : "";
        sent.push({ id: (await publish(port, ch, data, type)).id, event: type || "message",
                    data: data.replace(/\r\n?/g, "\n") });
      }
      await waitFor(() => s.events.length >= sent.length, 5000, "6 events");
      assert.deepEqual(s.events, sent);
      assert.equal(s.parser.retry, 300);
      assert.equal(s.parser.lastEventId, sent.at(-1).id);
      // With no event for a while, ":" comments keep the stream open and dispatch nothing.
      const comments = s.parser.comments;
      await waitFor(() => s.parser.comments >= comments + 2, 5000, "two heartbeats");
      assert.equal(s.events.length, sent.length);
      s.abort();
      assert.equal(await s.ended, "aborted");
    } finally {
      s?.abort();
      assert.equal(await stop(), 0);
    }
  });

test("fetch: a dropped stream is resumed by hand with the Last-Event-ID header, each event once",
  { timeout: 20000 }, async () => {
    const { port, stop } = await startGateway("retry: 200ms\n");
    const net = await relay(port);
    const ch = "fetch-drop";
    const got = [];
    const sent = [];
    const attempts = [];
    let running = true;
    // fetch-event-source's loop: on a network error, wait `retry` ms, then fetch again with the
    // last id seen.
    const consumer = (async () => {
      let lastEventId = "";
      let retry = 1000;
      while (running) {
        const headers = lastEventId ? { "Last-Event-ID": lastEventId } : {};
        attempts.push(lastEventId);
        const s = await openStream(url(net.port, ch), { headers, onEvent: (e) => got.push(e) });
        assert.equal(s.res.status, 200);
        const how = await s.ended;
        lastEventId = s.parser.lastEventId || lastEventId;
        retry = s.parser.retry ?? retry;
        if (how !== "error") break;
        await sleep(retry);
      }
    })();
    try {
      await waitSubscribers(port, ch, 1);
      const publishing = (async () => {
        for (let i = 0; i < 50; i++) {
          sent.push((await publish(port, ch, `event ${i}`)).id);
          await sleep(15);
        }
      })();
      await waitFor(() => got.length >= 10, 5000, "10 events before the cut");
      const idAtCut = got.at(-1).id;
      net.cut();
      await publishing;
      await waitFor(() => got.length >= 50, 10000, "all 50 events");
      await sleep(200);
      assert.deepEqual(got.map((e) => e.id), sent);
      assert.deepEqual(got.map((e) => e.data), sent.map((_, i) => `event ${i}`));
      assert.equal(attempts.length, 2);
      assert.equal(attempts[0], "");
      // The reconnect named the last id received, which the gateway answered with the rest.
      assert.ok(sent.indexOf(attempts[1]) >= sent.indexOf(idAtCut));
      assert.match(net.requests[1], new RegExp(`\\r\\nlast-event-id: ${attempts[1]}\\r\\n`, "i"));
    } finally {
      running = false;
      await net.close();  // ends the consumer's stream
      await consumer.catch(() => {});
      assert.equal(await stop(), 0);
    }
  });

test("fetch: ?last_event_id= resumes where headers cannot be set; the header wins over it",
  { timeout: 20000 }, async () => {
    const { port, stop } = await startGateway();
    const ch = "fetch-query";
    const open = [];
    try {
      let s = await openStream(url(port, ch));
      open.push(s);
      await waitSubscribers(port, ch, 1);
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push((await publish(port, ch, `e${i}`)).id);
      await waitFor(() => s.events.length >= 5, 5000, "5 events");
      s.abort();
      assert.equal(await s.ended, "aborted");
      await waitSubscribers(port, ch, 0);
      // Published while nobody listens: only the history has them.
      for (let i = 5; i < 10; i++) ids.push((await publish(port, ch, `e${i}`)).id);

      s = await openStream(url(port, ch, `last_event_id=${encodeURIComponent(ids[4])}`));
      open.push(s);
      await waitFor(() => s.events.length >= 5, 5000, "5 replayed events");
      await waitSubscribers(port, ch, 1);
      ids.push((await publish(port, ch, "e10")).id);
      await waitFor(() => s.events.length >= 6, 5000, "the live event");
      await sleep(100);
      assert.deepEqual(s.events.map((e) => e.id), ids.slice(5));
      assert.deepEqual(s.events.map((e) => e.data), ["e5", "e6", "e7", "e8", "e9", "e10"]);
      s.abort();

      // Header and query together: the header is the resume point.
      s = await openStream(url(port, ch, "last_event_id=0-0"), {
        headers: { "Last-Event-ID": ids[8] },
      });
      open.push(s);
      await waitFor(() => s.events.length >= 2, 5000, "2 replayed events");
      await sleep(100);
      assert.deepEqual(s.events.map((e) => e.id), [ids[9], ids[10]]);
      s.abort();

      // An id older than the history: a gap event without an id, then everything retained.
      s = await openStream(url(port, ch, "last_event_id=0-0"));
      open.push(s);
      await waitFor(() => s.events.length >= 12, 5000, "the gap and 11 events");
      assert.deepEqual(s.events[0], {
        id: undefined, event: "gap",
        data: `{"last_event_id":"0-0","first_available":"${ids[0]}"}`,
      });
      assert.deepEqual(s.events.slice(1).map((e) => e.id), ids);
      assert.equal(s.parser.lastEventId, ids[10]);
    } finally {
      for (const s of open) s.abort();
      assert.equal(await stop(), 0);
    }
  });
