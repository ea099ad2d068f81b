// Line plots rendered by the headless browser itself (canvas → PNG): no plotting dependency.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

const COLORS = ["#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa"];

/** `series`: { name: [[x seconds, y ms], ...] } → PNG at `path`. */
export async function plotLatency(browser, path, title, series) {
  mkdirSync(dirname(path), { recursive: true });
  const page = await browser.newPage({ viewport: { width: 960, height: 480 } });
  await page.setContent("<canvas id=c width=960 height=480></canvas>");
  await page.evaluate(({ title, series, colors }) => {
    const c = document.getElementById("c").getContext("2d");
    const W = 960, H = 480, L = 70, R = 20, T = 40, B = 50;
    c.fillStyle = "#fff"; c.fillRect(0, 0, W, H);
    const all = Object.values(series).flat();
    const xmax = Math.max(1, ...all.map((p) => p[0]));
    const ys = all.map((p) => p[1]).sort((a, b) => a - b);
    const ymax = Math.max(500, ys[Math.floor(ys.length * 0.995)] ?? 1000) * 1.1;
    const X = (x) => L + (x / xmax) * (W - L - R), Y = (y) => H - B - (Math.min(y, ymax) / ymax) * (H - T - B);
    c.strokeStyle = "#ddd"; c.fillStyle = "#333"; c.font = "12px sans-serif";
    const step = ymax > 4000 ? 1000 : ymax > 1500 ? 500 : 100;
    for (let y = 0; y <= ymax; y += step) {
      c.beginPath(); c.moveTo(L, Y(y)); c.lineTo(W - R, Y(y)); c.stroke();
      c.fillText(`${y} ms`, 8, Y(y) + 4);
    }
    for (let x = 0; x <= xmax; x += 10) c.fillText(`${x}s`, X(x) - 8, H - B + 18);
    c.font = "bold 15px sans-serif"; c.fillText(title, L, 24);
    Object.entries(series).forEach(([name, pts], i) => {
      c.strokeStyle = colors[i % colors.length]; c.lineWidth = 1.5; c.beginPath();
      pts.forEach(([x, y], j) => (j ? c.lineTo(X(x), Y(y)) : c.moveTo(X(x), Y(y))));
      c.stroke();
      c.fillStyle = colors[i % colors.length]; c.font = "13px sans-serif";
      c.fillText(name, W - R - 160, T + 16 + i * 18);
    });
  }, { title, series, colors: COLORS });
  await page.locator("#c").screenshot({ path });
  await page.close();
  return path;
}
