// Starts the real binaries on port 0 and reads the bound address from their first log line.
import { spawn } from "node:child_process";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

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

export async function startPair(yamlForMockPort) {
  const mock = await start("ssegw-mock-llm", ["--listen", "127.0.0.1:0"]);
  const dir = mkdtempSync(join(tmpdir(), "ssegw-node-"));
  const file = join(dir, "gateway.yaml");
  writeFileSync(file, "listen: 127.0.0.1:0\n" + yamlForMockPort(mock.port));
  const gateway = await start("ssegw", ["--config", file]);
  const stop = async () => {
    for (const p of [gateway.child, mock.child]) {
      p.removeAllListeners("exit");
      const exited = new Promise((r) => p.once("exit", (code) => r(code)));
      p.kill("SIGTERM");
      await exited;
    }
  };
  return { mock, gateway, stop };
}
