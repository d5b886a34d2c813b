// Starts the real binaries on port 0 and reads the bound address from their first log line, and
// small helpers the real-client tests share: a cuttable TCP relay, publishing, channel info.
import { spawn } from "node:child_process";
import { writeFileSync, mkdtempSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

export const bin = process.env.SSEGW_BIN_DIR;

export function start(binary, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(join(bin, binary), args, { stdio: ["ignore", "ignore", "pipe"] });
    const lines = createInterface({ input: child.stderr });
    const timer = setTimeout(() => reject(new Error(`${binary}: no listening line`)), 10000);
    child.on("exit", (code) => reject(new Error(`${binary} exited with ${code}`)));
    lines.once("line", (line) => {
      clearTimeout(timer);
      const addr = JSON.parse(line).addr;
      resolve({ child, port: Number(addr.slice(addr.lastIndexOf(":") + 1)) });
    });
  });
}

// SIGTERM, then the exit code (128 + signal number when a signal ended it).
async function stopProcess(p) {
  p.removeAllListeners("exit");
  const code = (c, s) => (c !== null ? c : 128 + ({ SIGTERM: 15, SIGKILL: 9 }[s] ?? 0));
  if (p.exitCode !== null || p.signalCode !== null) return code(p.exitCode, p.signalCode);
  const exited = new Promise((r) => p.once("exit", (c, s) => r(code(c, s))));
  p.kill("SIGTERM");
  return exited;
}

function writeConfig(yaml) {
  const dir = mkdtempSync(join(tmpdir(), "ssegw-node-"));
  const file = join(dir, "gateway.yaml");
  writeFileSync(file, "listen: 127.0.0.1:0\n" + yaml);
  return file;
}

export async function startPair(yamlForMockPort) {
  const mock = await start("ssegw-mock-llm", ["--listen", "127.0.0.1:0"]);
  const file = writeConfig(yamlForMockPort(mock.port));
  const gateway = await start("ssegw", ["--config", file]);
  const stop = async () => {
    for (const p of [gateway.child, mock.child]) await stopProcess(p);
  };
  return { mock, gateway, stop };
}

// ssegw alone, with `yaml` after "listen: 127.0.0.1:0". stop() drains it with SIGTERM and
// resolves to its exit code (0 for a clean drain).
export async function startGateway(yaml = "") {
  const gateway = await start("ssegw", ["--config", writeConfig(yaml)]);
  return { gateway, port: gateway.port, stop: () => stopProcess(gateway.child) };
}

// A TCP relay to the gateway whose connections the test can cut: a network drop. `requests`
// holds, per accepted connection, the bytes the client sent through it (request heads included).
export function relay(port) {
  const sockets = new Set();
  const requests = [];
  const server = createServer((client) => {
    const index = requests.push("") - 1;
    const upstream = connect(port, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.on("data", (bytes) => { requests[index] += bytes.toString("latin1"); });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    port: server.address().port,
    requests,
    cut: () => { for (const s of sockets) s.destroy(); },
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(r); }),
  })));
}

// POST /v1/channels/{channel}/events[?event=type]; resolves to the JSON answer
// ({id, channel, subscribers}). Throws unless 200.
export async function publish(port, channel, data, type = "") {
  const query = type ? `?event=${encodeURIComponent(type)}` : "";
  const res = await fetch(`http://127.0.0.1:${port}/v1/channels/${channel}/events${query}`,
                          { method: "POST", body: data });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`publish ${channel}: ${res.status} ${body}`);
  return JSON.parse(body);
}

// GET /v1/channels/{channel}: {channel, subscribers, retained, first_id, last_id}.
export async function channelInfo(port, channel) {
  const res = await fetch(`http://127.0.0.1:${port}/v1/channels/${channel}`);
  return res.json();
}

// Polls channelInfo until `subscribers` equals n; throws after timeoutMs.
export async function waitSubscribers(port, channel, n, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = (await channelInfo(port, channel)).subscribers;
    if (last === n) return;
    await sleep(20);
  }
  throw new Error(`${channel}: ${last} subscribers after ${timeoutMs} ms, want ${n}`);
}

// Resolves when predicate() turns true (checked every 10 ms); rejects after timeoutMs.
export async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(10);
  }
}
