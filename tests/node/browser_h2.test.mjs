// Many EventSources on one origin (issue 14), in Debian's Chromium over TLS with a CA made here:
// - over HTTP/2 one connection carries ten streams, and all ten receive their events;
// - over HTTP/1.1 (the same gateway with http2 disabled) Chromium opens at most six connections
//   per origin: six streams receive, the other four never reach the gateway;
// - the demo chat page streams its answer over HTTP/2.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { start, startGateway } from "./lib.mjs";

const executablePath = "/usr/bin/chromium";
const skip = !existsSync(executablePath);

// A CA, and a certificate it signed for 127.0.0.1 and localhost. Chromium trusts the server's key
// by its SPKI hash (--ignore-certificate-errors-spki-list), so nothing else is trusted.
function makePki() {
  const dir = mkdtempSync(join(tmpdir(), "ssegw-h2-pki-"));
  const f = (name) => join(dir, name);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "2", "-subj", "/CN=ssegw test CA");
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", f("server.key"), "-out", f("server.csr"), "-subj", "/CN=localhost");
  writeFileSync(f("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl("x509", "-req", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"),
          "-CAcreateserial", "-out", f("server.pem"), "-days", "2", "-extfile", f("ext.cnf"));
  const der = execFileSync("sh", ["-c",
    `openssl x509 -in '${f("server.pem")}' -pubkey -noout | openssl pkey -pubin -outform der`]);
  const spki = execFileSync("openssl", ["dgst", "-sha256", "-binary"], { input: der })
    .toString("base64");
  return { cert: f("server.pem"), key: f("server.key"), ca: readFileSync(f("ca.pem")), spki };
}

function tlsConfig(pki, http2) {
  return `tls: { cert_file: "${pki.cert}", key_file: "${pki.key}" }
http2: { enabled: ${http2} }
`;
}

// One HTTPS request from Node, trusting the test CA; resolves to {status, body}.
function fetchTls(port, ca, method, path, body = "") {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, ca, servername: "localhost" },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => { text += d; });
        res.on("end", () => resolve({ status: res.statusCode, body: text }));
      });
    req.on("error", reject);
    req.end(body);
  });
}

async function subscribers(port, ca, channel) {
  const res = await fetchTls(port, ca, "GET", `/v1/channels/${channel}`);
  return JSON.parse(res.body).subscribers;
}

async function launch(pki) {
  return chromium.launch({
    executablePath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           `--ignore-certificate-errors-spki-list=${pki.spki}`],
  });
}

// Opens ten EventSources on the page's own origin, one channel each; window.tabs records them.
function openTen() {
  window.tabs = Array.from({ length: 10 }, (_, i) => {
    const tab = { open: false, data: [] };
    tab.source = new EventSource(`/v1/channels/tab${i}/events`);
    tab.source.onopen = () => { tab.open = true; };
    tab.source.onmessage = (e) => { tab.data.push(e.data); };
    return tab;
  });
}

const state = (page) => page.evaluate(() => window.tabs.map((t) => ({
  open: t.open, data: t.data, readyState: t.source.readyState,
})));

async function tenTabs(http2) {
  const pki = makePki();
  const { port, stop } = await startGateway(tlsConfig(pki, http2));
  const browser = await launch(pki);
  try {
    const page = await browser.newPage();
    // A page of the origin with no script of its own (the demo page would open an EventSource).
    await page.goto(`https://localhost:${port}/healthz`);
    const protocol = await page.evaluate(
      () => performance.getEntriesByType("navigation")[0].nextHopProtocol);
    assert.equal(protocol, http2 ? "h2" : "http/1.1");
    await page.evaluate(openTen);
    const opened = http2 ? 10 : 6;
    let tabs;
    const deadline = Date.now() + 10000;
    for (;;) {
      tabs = await state(page);
      if (tabs.filter((t) => t.open).length >= opened) break;
      assert.ok(Date.now() < deadline, `only ${tabs.filter((t) => t.open).length} streams opened`);
      await page.waitForTimeout(20);
    }
    // Every opened stream is attached before anything is published.
    for (let i = 0; i < 10; ++i) {
      const want = tabs[i].open ? 1 : 0;
      const until = Date.now() + 5000;
      while ((await subscribers(port, pki.ca, `tab${i}`)) !== want) {
        assert.ok(Date.now() < until, `tab${i}: subscriber count never reached ${want}`);
        await page.waitForTimeout(20);
      }
    }
    for (let i = 0; i < 10; ++i) {
      const res = await fetchTls(port, pki.ca, "POST", `/v1/channels/tab${i}/events`, `hello ${i}`);
      assert.equal(res.status, 200, res.body);
    }
    const until = Date.now() + 10000;
    for (;;) {
      tabs = await state(page);
      if (tabs.filter((t) => t.data.length > 0).length >= opened) break;
      assert.ok(Date.now() < until, "not every open stream received its event");
      await page.waitForTimeout(20);
    }
    return tabs;
  } finally {
    await browser.close();
    await stop();
  }
}

test("browser h2: ten EventSources to one origin over HTTP/2 all receive their events",
  { skip }, async () => {
    const tabs = await tenTabs(true);
    tabs.forEach((t, i) => {
      assert.equal(t.open, true, `tab${i}`);
      assert.deepEqual(t.data, [`hello ${i}`], `tab${i}`);
    });
  });

test("browser h2: over HTTP/1.1 only six of the ten reach the gateway (the per-origin limit)",
  { skip }, async () => {
    const tabs = await tenTabs(false);
    const open = tabs.filter((t) => t.open);
    const waiting = tabs.filter((t) => !t.open);
    assert.equal(open.length, 6);
    for (const t of open) assert.equal(t.data.length, 1);
    assert.equal(waiting.length, 4);
    for (const t of waiting) {
      assert.equal(t.readyState, 0);  // CONNECTING: the request never left the browser
      assert.deepEqual(t.data, []);
    }
  });

test("browser h2: the demo chat page streams a complete answer over HTTP/2", { skip }, async () => {
  const pki = makePki();
  const mock = await start("ssegw-mock-llm", ["--listen", "127.0.0.1:0"]);
  const { port, stop } = await startGateway(tlsConfig(pki, true) + `demo: { enabled: true }
upstreams:
  llm: { url: "http://127.0.0.1:${mock.port}" }
routes:
  - { path: /v1/chat/completions, upstream: llm, resumable: true, on_disconnect: continue }
`);
  const browser = await launch(pki);
  try {
    const page = await browser.newPage();
    await page.route("**/v1/chat/completions", (route) => route.continue({
      headers: { ...route.request().headers(), "x-mock-tokens": "20", "x-mock-interval-ms": "10" },
    }));
    await page.goto(`https://localhost:${port}/?prompt=hello%20h2`);
    assert.equal(await page.evaluate(
      () => performance.getEntriesByType("navigation")[0].nextHopProtocol), "h2");
    await page.waitForFunction(() => window.ssegwDemo && window.ssegwDemo.answers.length === 1,
                               null, { timeout: 15000 });
    const expected = Array.from({ length: 20 }, (_, i) => `tok${i} `).join("");
    const demo = await page.evaluate(() => window.ssegwDemo);
    assert.equal(demo.answers[0], expected);
    assert.equal(demo.duplicates, 0);
  } finally {
    await browser.close();
    await stop();
    mock.child.kill("SIGTERM");
  }
});
