// Shared by the end-to-end tests and the benchmarks: start the origin, launch Chromium.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
  "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
];

/** Starts the origin on a free port; resolves once it listens and has produced media. */
export async function startOrigin({ args = [], bin = process.env.ORIGIN_BIN ?? "target/debug/origin" } = {}) {
  // Every show is recorded; unless a test wants the recording, it goes to a directory of its own
  // that is removed with the origin (not into target/recordings, run after run).
  const scratch = args.includes("--record") ? null : mkdtempSync(join(tmpdir(), "liveshop-origin-"));
  const extra = scratch ? ["--record", scratch] : [];
  const child = spawn(bin, ["--listen", "127.0.0.1:0", ...extra, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  child.once("exit", () => scratch && rmSync(scratch, { recursive: true, force: true }));
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
    process.stderr.write(`[origin] ${d}`);
  });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/origin listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`origin exited (${code}) before listening: ${stderr}`)));
    child.on("error", (e) => reject(new Error(`cannot start the origin ${bin} (${e.code}): build it with \`make origin\`, or set ORIGIN_BIN`)));
  });
  // The first request blocks until the first part exists.
  const res = await fetch(`${url}/live/show.m3u8`);
  if (!res.ok) throw new Error(`origin produced no playlist: HTTP ${res.status}`);
  return {
    url,
    child,
    async stop() {
      if (child.exitCode != null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export function launchBrowser() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
}
