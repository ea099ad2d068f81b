// The stall figures every benchmark and end-to-end test relies on (stalls.mjs), on made-up
// records: a frozen picture is a stall whether or not the element says `waiting`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { playbackFigures, freezeThresholdMs } from "./stalls.mjs";

const FRAME = 1000 / 30;
/** A record of frames shown every `FRAME` ms from `from` to `to`, codes (and media time) running with them. */
function frames(from, to, { code0 = 1_000_000, presented0 = 1 } = {}) {
  const out = [];
  for (let i = 0, at = from; at < to; i++, at += FRAME) {
    const code = Math.round(code0 + i * FRAME);
    out.push([at, code, presented0 + i, 300, code / 1000]);
  }
  return out;
}

test("smooth playback has no stall, and playing time starts at the first frame", () => {
  const f = playbackFigures({ firstFrameAt: 500, frames: frames(500, 10_000), waiting: [[100, 480]] }, { untilMs: 10_000 });
  assert.equal(f.stallCount, 0);
  assert.equal(f.playingMs, 9500);
  assert.ok(f.samples.length > 280);
});

test("a picture frozen without a waiting event is a stall; one of two dropped frames is not", () => {
  const a = frames(0, 3000);
  // 2 frames missing: a 100 ms gap.
  const b = frames(a.at(-1)[0] + 3 * FRAME, 5000, { code0: a.at(-1)[1] + 100, presented0: a.at(-1)[2] + 1 });
  // Frozen for 400 ms, then on.
  const c = frames(5400, 8000, { code0: b.at(-1)[1] + 400, presented0: b.at(-1)[2] + 1 });
  const f = playbackFigures({ firstFrameAt: 0, frames: [...a, ...b, ...c], waiting: [] }, { untilMs: 8000 });
  assert.equal(f.stallCount, 1);
  assert.equal(f.frozenCount, 1);
  assert.ok(Math.abs(f.stallMs - (5400 - b.at(-1)[0] - FRAME)) < 1, `${f.stallMs}`);
  assert.equal(Math.round(freezeThresholdMs(30)), 117);
});

test("the same code shown again, or frames that do not read, are no progress", () => {
  const a = frames(0, 2000);
  const last = a.at(-1);
  const repeats = [1, 2, 3, 4, 5, 6].map((i) => [last[0] + i * FRAME, i % 2 ? last[1] : null, last[2] + i, null, last[4]]);
  const b = frames(last[0] + 7 * FRAME, 4000, { code0: last[1] + 7 * FRAME, presented0: last[2] + 7 });
  const f = playbackFigures({ firstFrameAt: 0, frames: [...a, ...repeats, ...b], waiting: [] }, { untilMs: 4000 });
  assert.equal(f.stallCount, 1);
  assert.equal(f.unreadable, 3);
});

test("frames of the stream that carry one code (the source catching up) are not a freeze", () => {
  const a = frames(0, 2000);
  const last = a.at(-1);
  const same = [1, 2, 3, 4, 5].map((i) => [last[0] + i * FRAME, last[1] + 150, last[2] + i, 300, last[4] + i / 30]);
  const b = frames(same.at(-1)[0] + FRAME, 4000, { code0: last[1] + 151, presented0: last[2] + 6 });
  const f = playbackFigures({ firstFrameAt: 0, frames: [...a, ...same, ...b], waiting: [] }, { untilMs: 4000 });
  assert.equal(f.stallCount, 0);
});

test("frames presented while the page's callbacks ran late are not a freeze", () => {
  const a = frames(0, 2000);
  const last = a.at(-1);
  // The callback runs 500 ms later, for the 15th frame since: the compositor showed them all.
  const b = frames(last[0] + 15 * FRAME, 4000, { code0: last[1] + 15 * FRAME, presented0: last[2] + 15 });
  const f = playbackFigures({ firstFrameAt: 0, frames: [...a, ...b], waiting: [] }, { untilMs: 4000 });
  assert.equal(f.stallCount, 0);
});

test("waiting and freezes that overlap count once; a freeze running into the window's end counts", () => {
  const a = frames(0, 2000);
  const b = frames(2600, 5000, { code0: a.at(-1)[1] + 600, presented0: a.at(-1)[2] + 1 });
  const log = { firstFrameAt: 0, frames: [...a, ...b], waiting: [[2100, 2550], [4000, null]] };
  const f = playbackFigures(log, { untilMs: 6000 });
  // [2000+33, 2600] with the waiting inside it; [4000, 6000] waiting, frozen from 5000 on.
  assert.equal(f.stallCount, 2);
  assert.equal(f.waitingCount, 2);
  assert.ok(Math.abs(f.stallMs - (2600 - a.at(-1)[0] - FRAME) - 2000) < 1, `${f.stallMs}`);
});

test("waiting begun before the first frame is the join, even if playing comes after it", () => {
  const f = playbackFigures({ firstFrameAt: 400, frames: frames(400, 3000), waiting: [[100, 430]] }, { untilMs: 3000 });
  assert.equal(f.stallCount, 0);
});

test("figures from a later point count only what falls after it", () => {
  const a = frames(0, 2000);
  const b = frames(2500, 6000, { code0: a.at(-1)[1] + 500, presented0: a.at(-1)[2] + 1 });
  const f = playbackFigures({ firstFrameAt: 0, frames: [...a, ...b], waiting: [] }, { fromMs: 2300, untilMs: 6000 });
  assert.equal(f.stallCount, 1);
  assert.ok(Math.abs(f.stallMs - 200) < 1, `${f.stallMs}`);
  assert.equal(f.playingMs, 3700);
  const g = playbackFigures({ firstFrameAt: 0, frames: [...a, ...b], waiting: [] }, { fromMs: 3000, untilMs: 6000 });
  assert.equal(g.stallCount, 0);
});

test("no readable frame, no figures", () => {
  const f = playbackFigures({ firstFrameAt: null, frames: [[10, null, 1, null]], waiting: [] }, { untilMs: 1000 });
  assert.equal(f.firstFrameAt, null);
  assert.equal(f.unreadable, 1);
});
