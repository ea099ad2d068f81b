// Why the edge is Varnish: a crowd asks for the part being produced (the preload hint, asked
// for before it exists). Both edges collapse the crowd into one origin request; this measures
// when each viewer gets its first bytes and its last through Varnish (edge/liveshop.vcl) and
// through nginx with `proxy_cache_lock` (its documented way to collapse misses).
//
//   node bench/edge-choice.mjs   (needs Debian's varnish and nginx-light; writes
//                                 target/bench/edge-choice.json)
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOrigin } from "../tests/e2e/harness.mjs";
import { startEdge, freePort } from "../tests/e2e/edge.mjs";
import { percentile, BENCH_DIR } from "./report.mjs";

const CROWD = Number(process.env.CROWD ?? 50);
const ROUNDS = Number(process.env.ROUNDS ?? 10);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startNginx(backend) {
  const dir = mkdtempSync(join(tmpdir(), "liveshop-nginx-"));
  const port = await freePort();
  const { host } = new URL(backend);
  writeFileSync(join(dir, "nginx.conf"), `
user root;
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=live:10m max_size=256m inactive=60s use_temp_path=off;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://${host};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache live;
      # One request to the origin per missing object; the others wait for the cache entry.
      proxy_cache_lock on;
      proxy_cache_lock_timeout 5s;
      proxy_cache_lock_age 5s;
    }
  }
}
`);
  const child = spawn("/usr/sbin/nginx", ["-c", join(dir, "nginx.conf"), "-p", dir], { stdio: "inherit" });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${url}/clock`).then((r) => r.ok, () => false)) break;
    await sleep(100);
  }
  return {
    url,
    stop: async () => {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One round: the crowd asks `edge` for the part that has just been hinted. */
async function round(origin, edge) {
  const hint = (text) => text.match(/PRELOAD-HINT:TYPE=PART,URI="show\/(\d+)\.(\d+)\.m4s"/);
  const [, msn, part] = hint(await (await fetch(`${origin.url}/live/show.m3u8`)).text());
  const fresh = await (await fetch(`${origin.url}/live/show.m3u8?_HLS_msn=${msn}&_HLS_part=${part}`)).text();
  const [, m, p] = hint(fresh);
  const before = await (await fetch(`${origin.url}/stats`)).json();
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: CROWD }, async () => {
    const res = await fetch(`${edge.url}/live/show/${m}.${p}.m4s`);
    const reader = res.body.getReader();
    let first = null;
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
      first ??= performance.now() - t0;
    }
    return { first, last: performance.now() - t0 };
  }));
  const after = await (await fetch(`${origin.url}/stats`)).json();
  return { results, originParts: after.kinds.part - before.kinds.part };
}

const origin = await startOrigin({ bin: process.env.ORIGIN_BIN ?? "target/release/origin", args: ["--width", "320", "--height", "180"] });
const out = {};
try {
  for (const [name, start] of [["varnish", () => startEdge({ backend: origin.url, threadsMin: 200 })], ["nginx", () => startNginx(origin.url)]]) {
    const edge = await start();
    try {
      const firsts = [], lasts = [], waits = [];
      let originParts = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const r = await round(origin, edge);
        originParts += r.originParts;
        const f = r.results.map((x) => x.first).sort((a, b) => a - b);
        firsts.push(...f);
        lasts.push(...r.results.map((x) => x.last));
        // How much later than the earliest viewer the others got their first bytes.
        waits.push(...f.map((x) => x - f[0]));
        await sleep(300);
      }
      const q = (v, k) => Math.round(percentile(v, k));
      out[name] = {
        crowd: CROWD, rounds: ROUNDS, origin_part_requests_per_round: originParts / ROUNDS,
        first_byte_ms: { p50: q(firsts, 0.5), p95: q(firsts, 0.95) },
        first_byte_after_earliest_ms: { p50: q(waits, 0.5), p95: q(waits, 0.95) },
        complete_ms: { p50: q(lasts, 0.5), p95: q(lasts, 0.95) },
      };
      console.log(name, JSON.stringify(out[name]));
    } finally {
      await edge.stop();
    }
  }
  mkdirSync(BENCH_DIR, { recursive: true });
  writeFileSync(`${BENCH_DIR}/edge-choice.json`, JSON.stringify(out, null, 2) + "\n");
} finally {
  await origin.stop();
}
