// Stalls as a viewer sees them, found the same way for every player: from the frames the page
// showed (recorded by playback.js), never from the player's own figures.

/** Frames a second the origin draws (its `--fps`, 30 unless told otherwise). */
export const SOURCE_FPS = 30;

/**
 * A picture with no new frame code for longer than this while playback is expected is frozen:
 * 3.5 frame intervals, 117 ms at 30 fps. One or two frames missing (a 67 or 100 ms gap) is a
 * hiccup that rate changes (0.92–1.5×) and a busy two-core machine produce, not a stall; three
 * or more in a row is a freeze anyone sees. The half interval on top is one 60 Hz display
 * refresh: frames are shown on refreshes, so a gap of 3 intervals can land a refresh late.
 */
export function freezeThresholdMs(fps = SOURCE_FPS) {
  return (3.5 * 1000) / fps;
}

/**
 * Figures from a playback.js record over the page's first `untilMs` (performance.now(), zero
 * is the page's navigation), or from `fromMs` on. Waiting before the first frame is time to first frame; from the
 * first frame to `untilMs` is playing time, and in it every frozen picture and every
 * `waiting`…`playing` spell begun after the first frame is a stall (overlapping ones counted
 * once). A frozen spell runs
 * from when the next frame was due to when a new one was shown (or `untilMs`).
 * `requireCode`: only a frame whose code reads is progress; without it (a picture with no
 * code), any frame. Either way it must be a new frame: another code or another media time.
 */
export function playbackFigures(log, { fromMs = 0, untilMs, fps = SOURCE_FPS, requireCode = true }) {
  const first = log?.firstFrameAt;
  const from = Math.max(first ?? 0, fromMs);
  const frames = (log?.frames ?? []).filter(([at]) => at <= untilMs);
  const unreadable = frames.filter(([, code]) => code == null).length;
  if (first == null || first > untilMs) {
    return { firstFrameAt: null, playingMs: 0, stalls: [], stallMs: 0, stallCount: 0, frozenCount: 0, waitingCount: 0, samples: [], unreadable };
  }
  const interval = 1000 / fps;
  const threshold = freezeThresholdMs(fps);
  const frozen = [];
  let last = null; // the last frame that showed something new: [at, code, presentedFrames, , mediaTime]
  let repeats = 0; // frames presented since then that showed nothing new
  for (const f of frames) {
    const [at, code, presented, , mediaTime] = f;
    // A new code, or the same code on another frame of the media: the origin's source, running
    // late on a busy machine, draws a few frames within one millisecond as it catches up; those
    // are frames of the stream all the same, and every player shows them alike.
    const fresh = !last || code !== last[1] || (mediaTime != null && mediaTime !== last[4]);
    const progress = requireCode ? code != null && fresh : fresh;
    if (!progress) {
      repeats++;
      continue;
    }
    if (last) {
      // A busy page runs its frame callback late, once, for the latest frame: the frames
      // presented in between were new pictures too. Shown at the normal pace at best, they
      // leave this much of the gap frozen.
      const unseen = presented != null && last[2] != null ? Math.max(0, presented - last[2] - 1 - repeats) : 0;
      const still = at - last[0] - unseen * interval;
      if (still > threshold) frozen.push([last[0] + interval, last[0] + still]);
    }
    last = f;
    repeats = 0;
  }
  if (last && untilMs - last[0] > threshold) frozen.push([last[0] + interval, untilMs]);
  const clip = ([a, b]) => [Math.max(a, from), Math.min(b ?? untilMs, untilMs)];
  const frozenIn = frozen.map(clip).filter(([a, b]) => b > a);
  // A waiting spell begun before the first frame is the join itself, whenever `playing` comes
  // (if the first picture then stands still, that shows as frozen).
  const waitingIn = (log.waiting ?? []).filter(([a]) => a >= first).map(clip).filter(([a, b]) => b > a);
  const stalls = union([...frozenIn, ...waitingIn]);
  return {
    firstFrameAt: first,
    playingMs: untilMs - from,
    stalls,
    stallMs: stalls.reduce((sum, [a, b]) => sum + b - a, 0),
    stallCount: stalls.length,
    frozenCount: frozenIn.length,
    waitingCount: waitingIn.length,
    samples: frames.filter(([at, , , lat]) => lat != null && at >= fromMs).map(([at, , , lat]) => [at, lat]),
    unreadable,
  };
}

/** Overlapping or touching intervals merged, in order. */
function union(intervals) {
  const out = [];
  for (const [a, b] of [...intervals].sort((x, y) => x[0] - y[0])) {
    const prev = out.at(-1);
    if (prev && a <= prev[1]) prev[1] = Math.max(prev[1], b);
    else out.push([a, b]);
  }
  return out;
}
