// Records what a page's <video> shows, for figures that do not trust the player: every frame
// presented (requestVideoFrameCallback) with the frame code it carries (framecode.js), and the
// element's own waiting/playing. Injected with playwright's addInitScript after framecode.js;
// defines window.__liveshopPlayback. tests/e2e/stalls.mjs turns a record into figures.
(() => {
  /**
   * Starts recording `video`; returns the record, filled in as frames are shown:
   * - `frames`: [displayAt, code, presentedFrames, latencyMs, mediaTime] per frame callback,
   *   `displayAt` on the performance.now() clock (when the compositor expects to show it),
   *   `code` the capture time read from the frame or null, `latencyMs` Date.now() minus that
   *   capture time, `mediaTime` the frame's timestamp in the media (seconds);
   * - `firstFrameAt`: performance.now() when the first frame whose code reads was shown (with
   *   `{ anyFrame: true }`, the first frame at all, for pictures without a code);
   * - `waiting`: [from, to] of every `waiting` ... `playing` spell (`to` null while open).
   */
  function record(video, { anyFrame = false } = {}) {
    const log = { frames: [], firstFrameAt: null, waiting: [] };
    const frame = (code, md) => {
      const now = performance.now();
      if (code != null || anyFrame) log.firstFrameAt ??= now;
      log.frames.push([
        md?.expectedDisplayTime ?? now, code, md?.presentedFrames ?? null, code == null ? null : Date.now() - code,
        md?.mediaTime ?? null,
      ]);
    };
    window.__liveshopFrameCode.watch(video, (code, md) => frame(code, md), (md) => frame(null, md));
    video.addEventListener("waiting", () => {
      const open = log.waiting.at(-1);
      if (!open || open[1] != null) log.waiting.push([performance.now(), null]);
    });
    video.addEventListener("playing", () => {
      const open = log.waiting.at(-1);
      if (open && open[1] == null) open[1] = performance.now();
    });
    return log;
  }

  /** Records the page's first <video> as soon as it exists, into `window.__playback`. */
  function recordFirstVideo(options) {
    const hook = () => {
      const v = document.querySelector("video");
      if (!v) return setTimeout(hook, 20);
      window.__playback = record(v, options);
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", hook);
    else hook();
  }

  window.__liveshopPlayback = { record, recordFirstVideo };
})();
