// Line plots rendered by the headless browser itself (canvas → PNG): no plotting dependency.
import { mkdirSync } from "node:fs";
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
