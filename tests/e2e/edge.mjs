// Starts a real Varnish edge (edge/liveshop.vcl) in front of a backend (the origin, or another
// edge: a shield), for the end-to-end tests and the benchmarks. `scripts/setup.sh` installs it.
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const VCL_DIR = new URL("../../edge/", import.meta.url).pathname;
export const VARNISHD = process.env.VARNISHD ?? "/usr/sbin/varnishd";

// Worker threads kept ready: a viewer streaming the hinted part holds one while it is
// delivered (waiting on the waiting list does not), so a thousand viewers need about a
// thousand at the top of each part; starting them on demand would add their creation to the
// first viewers' latency.
const THREADS_MIN = 1200;
// Well above what 1000 viewers with three requests each can hold at once.
const THREADS_MAX = 5000;

/** A free TCP port on loopback (bound, read, released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `varnishd` in the foreground on a free port (or `port`), caching for `backend`
 * (`http://host:port`). Resolves once it answers; `restart()` stops it and starts it again on
 * the same port with an empty cache, as a crashed or redeployed edge comes back.
 */
export async function startEdge({ backend, port, name = "edge", threadsMin = THREADS_MIN } = {}) {
  const { hostname, port: backendPort } = new URL(backend);
  const dir = mkdtempSync(join(tmpdir(), `liveshop-${name}-`));
  // varnishd compiles the VCL as an unprivileged user: it must read backend.vcl.
  chmodSync(dir, 0o755);
  writeFileSync(
    join(dir, "backend.vcl"),
    // Blocking requests are held by the origin for up to a few seconds: the default timeouts
    // (60 s) are fine; a connection refused (the origin restarting) fails at once.
    `backend default { .host = "${hostname}"; .port = "${backendPort}"; .connect_timeout = 1s; }\n`,
  );
  port ??= await freePort();
  const edge = { url: `http://127.0.0.1:${port}`, port, dir, child: null };
  const launch = async () => {
    const args = [
      "-F", "-n", join(dir, "work"), "-a", `127.0.0.1:${port}`,
      "-f", join(VCL_DIR, "liveshop.vcl"), "-p", `vcl_path=${dir}:${VCL_DIR}`,
      "-s", "malloc,256m",
      "-p", `thread_pool_min=${Math.ceil(threadsMin / 2)}`, "-p", `thread_pool_max=${THREADS_MAX / 2}`, "-p", "thread_pools=2",
    ];
    const child = spawn(VARNISHD, args, { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stdout.on("data", (d) => (log += d));
    child.stderr.on("data", (d) => (log += d));
    const failed = new Promise((_, reject) => {
      child.once("error", (e) => reject(new Error(`cannot start ${VARNISHD} (${e.code}): run scripts/setup.sh (it installs varnish)`)));
      child.once("exit", (code) => reject(new Error(`varnishd exited (${code}) at start: ${log}`)));
    });
    edge.child = child;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ok = await Promise.race([
        fetch(`${edge.url}/clock`).then((r) => r.ok, () => false),
        failed,
      ]);
      if (ok) break;
      if (Date.now() > deadline) {
        child.kill("SIGTERM");
        throw new Error(`varnishd did not answer on ${edge.url} in 20 s: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    child.removeAllListeners("exit");
  };
  const stop = async () => {
    const child = edge.child;
    if (!child || child.exitCode != null || child.signalCode != null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  };
  await launch();
  return Object.assign(edge, {
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    /** Stops the edge, leaves it down `downMs`, starts it again (empty cache, same port). */
    restart: async ({ downMs = 0 } = {}) => {
      await stop();
      await new Promise((r) => setTimeout(r, downMs));
      await launch();
    },
    /** CPU seconds (user + system) used so far by the edge's processes (manager and cache). */
    cpuSeconds: () => processTreeCpuSeconds(edge.child.pid),
  });
}

const TICKS_PER_S = 100; // USER_HZ on Linux

/** CPU seconds of `pid` and its children (from /proc): varnishd forks its cache process. */
export function processTreeCpuSeconds(pid) {
  const stat = (p) => {
    try {
      const s = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICKS_PER_S };
    } catch {
      return null;
    }
  };
  let total = stat(pid)?.cpu ?? 0;
  for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    const s = stat(p);
    if (s && s.ppid === pid) total += s.cpu;
  }
  return total;
}
