// Line plots rendered by the headless browser itself (canvas → PNG): no plotting dependency.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

const COLORS = ["#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa"];

/**
 * `series`: { name: [[x seconds, y ms], ...] } → PNG at `path`. `points`: a dot per value
 * rather than a line; `yFloor`: the lowest top of the y axis (ms); `log`: a logarithmic y axis
 * from 1 ms (values below 1 drawn at 1), for figures of very different sizes side by side.
 */
export async function plotLatency(browser, path, title, series, { points = false, yFloor = 500, log = false } = {}) {
  mkdirSync(dirname(path), { recursive: true });
  const page = await browser.newPage({ viewport: { width: 960, height: 480 } });
  await page.setContent("<canvas id=c width=960 height=480></canvas>");
  await page.evaluate(({ title, series, colors, points, yFloor, log }) => {
    const c = document.getElementById("c").getContext("2d");
    const W = 960, H = 480, L = 70, R = 20, T = 40, B = 50;
    c.fillStyle = "#fff"; c.fillRect(0, 0, W, H);
    const all = Object.values(series).flat();
    const xmax = Math.max(1, ...all.map((p) => p[0]));
    const ys = all.map((p) => p[1]).sort((a, b) => a - b);
    const ymax = log
      ? 10 ** Math.ceil(Math.log10(Math.max(yFloor, ys.at(-1) ?? 1000) * 1.1))
      : Math.max(yFloor, ys[Math.floor(ys.length * 0.995)] ?? 1000) * 1.1;
    const scale = (y) => (log ? Math.log10(Math.max(1, Math.min(y, ymax))) / Math.log10(ymax) : Math.min(y, ymax) / ymax);
    const X = (x) => L + (x / xmax) * (W - L - R), Y = (y) => H - B - scale(y) * (H - T - B);
    c.strokeStyle = "#ddd"; c.fillStyle = "#333"; c.font = "12px sans-serif";
    const step = ymax > 4000 ? 1000 : ymax > 1500 ? 500 : ymax > 300 ? 100 : 20;
    const ticks = log
      ? Array.from({ length: Math.log10(ymax) + 1 }, (_, k) => 10 ** k).flatMap((d) => [d, 2 * d, 5 * d]).filter((y) => y <= ymax)
      : Array.from({ length: Math.floor(ymax / step) + 1 }, (_, k) => k * step);
    for (const y of ticks) {
      c.beginPath(); c.moveTo(L, Y(y)); c.lineTo(W - R, Y(y)); c.stroke();
      c.fillText(`${y} ms`, 8, Y(y) + 4);
    }
    for (let x = 0; x <= xmax; x += 10) c.fillText(`${x}s`, X(x) - 8, H - B + 18);
    c.font = "bold 15px sans-serif"; c.fillText(title, L, 24);
    Object.entries(series).forEach(([name, pts], i) => {
      c.strokeStyle = colors[i % colors.length]; c.lineWidth = 1.5; c.beginPath();
      if (points) {
        c.fillStyle = colors[i % colors.length];
        for (const [x, y] of pts) { c.beginPath(); c.arc(X(x), Y(y), 3.5, 0, 2 * Math.PI); c.fill(); }
      } else {
        pts.forEach(([x, y], j) => (j ? c.lineTo(X(x), Y(y)) : c.moveTo(X(x), Y(y))));
        c.stroke();
      }
      c.fillStyle = colors[i % colors.length]; c.font = "13px sans-serif";
      c.fillText(name, W - R - 260, T + 16 + i * 18);
    });
  }, { title, series, colors: COLORS, points, yFloor, log });
  await page.locator("#c").screenshot({ path });
  await page.close();
  return path;
}

/**
 * The `scale` rows as an SVG (no browser needed): origin requests per second (left) and viewer
 * latency p50/p95 (right) against the number of viewers (log axis), one line per way in
 * (`edge`, `shield`, `origin`). Returns `path`.
 */
export function scalePlot(path, rows) {
  mkdirSync(dirname(path), { recursive: true });
  const W = 960, H = 420, PW = 380, PH = 300, T = 60, gap = 110, L = 70;
  // One line per way in and chunk length (rows without `chunk_ms`, or the smallest, are the
  // show as configured).
  const baseChunk = Math.min(...rows.map((r) => r.chunk_ms ?? Infinity));
  const label = (r) => `${r.via}${r.chunk_ms != null && r.chunk_ms !== baseChunk ? `, ${r.chunk_ms} ms chunks` : ""}`;
  const vias = [...new Set(rows.map(label))];
  const xs = rows.map((r) => r.viewers);
  const xmax = 10 ** Math.ceil(Math.log10(Math.max(10, ...xs)));
  const X = (x0, n) => x0 + (Math.log10(Math.max(1, n)) / Math.log10(xmax)) * PW;
  const esc = (s) => String(s).replace(/[<&>]/g, (c) => ({ "<": "&lt;", "&": "&amp;", ">": "&gt;" })[c]);
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">` +
    `<rect width="${W}" height="${H}" fill="#fff"/>`;
  // `log`: a logarithmic y axis from 1 (origin load spans 6 to 600 requests a second).
  const panel = (x0, title, unit, series, log = false) => {
    const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((y) => y != null);
    const ymax = log ? 10 ** Math.ceil(Math.log10(Math.max(10, ...ys) * 1.5)) : Math.max(1, ...ys) * 1.15;
    const Y = (y) => T + PH - (log ? Math.log10(Math.max(1, y)) / Math.log10(ymax) : y / ymax) * PH;
    svg += `<text x="${x0}" y="${T - 20}" font-weight="bold" font-size="14">${esc(title)}</text>`;
    const step = 10 ** Math.floor(Math.log10(ymax / 2));
    const tick = ymax / step > 10 ? step * 2 : step;
    const ticks = log
      ? Array.from({ length: Math.log10(ymax) + 1 }, (_, k) => 10 ** k)
      : Array.from({ length: Math.floor(ymax / tick) + 1 }, (_, k) => k * tick);
    for (const y of ticks) {
      svg += `<line x1="${x0}" x2="${x0 + PW}" y1="${Y(y)}" y2="${Y(y)}" stroke="#ddd"/>` +
        `<text x="${x0 - 6}" y="${Y(y) + 4}" text-anchor="end">${Math.round(y * 10) / 10}${unit}</text>`;
    }
    for (let n = 1; n <= xmax; n *= 10) {
      svg += `<line x1="${X(x0, n)}" x2="${X(x0, n)}" y1="${T}" y2="${T + PH}" stroke="#eee"/>` +
        `<text x="${X(x0, n)}" y="${T + PH + 18}" text-anchor="middle">${n}</text>`;
    }
    svg += `<text x="${x0 + PW / 2}" y="${T + PH + 38}" text-anchor="middle">viewers</text>`;
    series.forEach((s, i) => {
      const pts = s.points.filter((p) => p[1] != null);
      if (pts.length > 1) {
        svg += `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5,4"' : ""} points="${pts.map(([n, y]) => `${X(x0, n)},${Y(y)}`).join(" ")}"/>`;
      }
      for (const [n, y] of pts) svg += `<circle cx="${X(x0, n)}" cy="${Y(y)}" r="4" fill="${s.color}"/>`;
      svg += `<text x="${x0 + 8}" y="${T + 14 + i * 16}" fill="${s.color}">${esc(s.name)}</text>`;
    });
  };
  const by = (via) => rows.filter((r) => label(r) === via).sort((a, b) => a.viewers - b.viewers);
  panel(L, "origin requests per second (log)", "", vias.map((via, i) => ({
    name: `via ${via}`, color: COLORS[i % COLORS.length], points: by(via).map((r) => [r.viewers, r.origin_rps]),
  })), true);
  panel(L + PW + gap, "viewer latency (per-viewer medians)", " ms", vias.flatMap((via, i) => [
    { name: `via ${via}: p50`, color: COLORS[i % COLORS.length], points: by(via).map((r) => [r.viewers, r.latency_ms.p50]) },
    { name: `via ${via}: p95`, color: COLORS[i % COLORS.length], dash: true, points: by(via).map((r) => [r.viewers, r.latency_ms.p95]) },
  ]));
  writeFileSync(path, svg + "</svg>\n");
  return path;
}

/**
 * Seek times of the `replay` section as an SVG (no browser needed): one panel per profile; in
 * each, a column per kind of seek (node, random, last of a scrub) and player, a dot per seek
 * (spread sideways so they do not hide one another) and a bar at the median, on a log axis.
 * `series`: { "<player>/<profile>": { node: [ms], random: [ms], scrub: [ms] } } (null: the
 * seek showed no frame). Returns `path`.
 */
export function replayPlot(path, title, series) {
  mkdirSync(dirname(path), { recursive: true });
  const keys = Object.keys(series);
  const players = [...new Set(keys.map((k) => k.split("/")[0]))];
  const profiles = [...new Set(keys.map((k) => k.slice(k.indexOf("/") + 1)))];
  const kinds = [["node", "node seek"], ["random", "random seek"], ["scrub", "scrub: last seek"]];
  const PW = 460, PH = 300, T = 70, L = 70, gap = 60, W = L + profiles.length * (PW + gap), H = T + PH + 80;
  const all = Object.values(series).flatMap((s) => [...s.node, ...s.random, ...s.scrub]).filter((v) => v != null);
  const ymax = 10 ** Math.ceil(Math.log10(Math.max(1000, ...all)));
  const Y = (v) => T + PH - (Math.log10(Math.max(1, v)) / Math.log10(ymax)) * PH;
  const esc = (s) => String(s).replace(/[<&>]/g, (c) => ({ "<": "&lt;", "&": "&amp;", ">": "&gt;" })[c]);
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">` +
    `<rect width="${W}" height="${H}" fill="#fff"/><text x="${L}" y="24" font-weight="bold" font-size="15">${esc(title)}</text>`;
  players.forEach((p, i) => {
    svg += `<circle cx="${L + 8 + i * 140}" cy="44" r="5" fill="${COLORS[i % COLORS.length]}"/>` +
      `<text x="${L + 18 + i * 140}" y="48">${esc(p)}</text>`;
  });
  profiles.forEach((profile, pi) => {
    const x0 = L + pi * (PW + gap);
    svg += `<text x="${x0}" y="${T - 6}" font-weight="bold">${esc(profile)}</text>`;
    for (let d = 1; d <= ymax; d *= 10) {
      for (const m of [1, 2, 5]) {
        const v = d * m;
        if (v > ymax) continue;
        svg += `<line x1="${x0}" x2="${x0 + PW}" y1="${Y(v)}" y2="${Y(v)}" stroke="${m === 1 ? "#ccc" : "#eee"}"/>`;
        if (pi === 0 || m === 1) svg += `<text x="${x0 - 6}" y="${Y(v) + 4}" text-anchor="end">${v} ms</text>`;
      }
    }
    const colW = PW / (kinds.length * players.length + kinds.length);
    kinds.forEach(([kind, label], ki) => {
      const kx = x0 + ki * (players.length + 1) * colW + colW / 2;
      svg += `<text x="${kx + (players.length * colW) / 2}" y="${T + PH + 20}" text-anchor="middle">${label}</text>`;
      players.forEach((player, i) => {
        const values = series[`${player}/${profile}`]?.[kind] ?? [];
        const cx = kx + (i + 0.5) * colW;
        const color = COLORS[i % COLORS.length];
        values.forEach((v, j) => {
          const dx = ((j * 7) % 11 - 5) * (colW / 30);
          svg += v == null
            ? `<text x="${cx + dx}" y="${T + 10}" fill="${color}" text-anchor="middle">×</text>`
            : `<circle cx="${cx + dx}" cy="${Y(v)}" r="3" fill="${color}" fill-opacity="0.6"/>`;
        });
        const shown = values.filter((v) => v != null).sort((a, b) => a - b);
        if (shown.length) {
          const median = shown[Math.floor(shown.length / 2)];
          svg += `<line x1="${cx - colW / 2.5}" x2="${cx + colW / 2.5}" y1="${Y(median)}" y2="${Y(median)}" stroke="${color}" stroke-width="3"/>`;
        }
      });
    });
  });
  svg += `<text x="${L}" y="${H - 16}" fill="#555">a dot per seek: call → its frame on screen (read from the frame code); bar: median; ×: no frame</text>`;
  writeFileSync(path, svg + "</svg>\n");
  return path;
}
