// Shared by the end-to-end tests and the benchmarks: start the origin, launch Chromium, read the
// frame code (DESIGN §3.2) off the screen to measure a player's true latency.
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
  "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
];

/** Path of the in-page frame-code reader, for `page.addInitScript({ path })`. */
export const FRAMECODE_PATH = new URL("./framecode.js", import.meta.url).pathname;

/** Starts the origin on a free port; resolves once it listens and has produced media. */
export async function startOrigin({ args = [], bin = process.env.ORIGIN_BIN ?? "target/debug/origin" } = {}) {
  const child = spawn(bin, ["--listen", "127.0.0.1:0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
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
    child.on("error", (e) => reject(new Error(`cannot start the origin (${bin}): ${e.message}; build it with cargo build -p origin`)));
    child.on("exit", (code) => reject(new Error(`origin exited (${code}) before listening: ${stderr}`)));
  });
  // The first request blocks until the first part exists.
  const res = await fetch(`${url}/live/show.m3u8`);
  if (!res.ok) throw new Error(`origin produced no playlist: HTTP ${res.status}`);
  return {
    url,
    child,
    async stop() {
      if (child.exitCode != null || child.signalCode != null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export function launchBrowser() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
}

/** Process id of the origin's running ffmpeg (to kill it in restart tests). */
export async function ffmpegPid(originUrl) {
  const res = await fetch(`${originUrl}/admin/ffmpeg-pid`);
  if (!res.ok) throw new Error(`no ffmpeg running: HTTP ${res.status}`);
  return Number(await res.text());
}

/** Kills the origin's ffmpeg; the origin restarts it and marks a discontinuity. */
export async function killFfmpeg(originUrl, signal = "SIGKILL") {
  const pid = await ffmpegPid(originUrl);
  process.kill(pid, signal);
  return pid;
}

/** Makes the frame-code reader available in every document the page loads. */
export async function installFrameCode(page) {
  await page.addInitScript({ path: FRAMECODE_PATH });
}

/**
 * Starts recording, in the page, one latency sample per displayed frame of the `<video>` that
 * `selector` finds: `{ at, latencyMs, captureMs }` where `latencyMs` is the wall clock when the
 * frame is shown minus the capture time coded into it. The page must have the reader installed
 * (`installFrameCode` before navigating). Samples accumulate in `window.__latencySamples`.
 */
export async function startLatencySampling(page, { selector = "video", timeout = 20_000 } = {}) {
  await page.waitForFunction((sel) => {
    const v = document.querySelector(sel);
    return window.__liveshopFrameCode && v && v.videoWidth > 0;
  }, selector, { timeout });
  await page.evaluate((sel) => {
    window.__stopLatency?.();
    const samples = (window.__latencySamples = []);
    window.__stopLatency = window.__liveshopFrameCode.watch(document.querySelector(sel), (captureMs, _m, shownAtMs) =>
      samples.push({ at: shownAtMs, latencyMs: shownAtMs - captureMs, captureMs }));
  }, selector);
}

/** The samples recorded so far (and clears them unless `keep`). */
export async function takeLatencySamples(page, { keep = false } = {}) {
  return page.evaluate((keep) => {
    const s = window.__latencySamples ?? [];
    if (!keep) window.__latencySamples = [];
    return s;
  }, keep);
}

/** Samples latency for `ms` milliseconds of playback and summarises it. */
export async function sampleLatency(page, ms, opts = {}) {
  await startLatencySampling(page, opts);
  await new Promise((r) => setTimeout(r, ms));
  const samples = await takeLatencySamples(page);
  await page.evaluate(() => window.__stopLatency?.());
  return summarize(samples.map((s) => s.latencyMs), samples);
}

/** Nearest-rank percentile (`p` in 0..100) of `values`; NaN when empty. */
export function percentile(values, p) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

function summarize(values, samples) {
  return {
    count: values.length,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    min: values.length ? Math.min(...values) : NaN,
    max: values.length ? Math.max(...values) : NaN,
    samples,
  };
}
