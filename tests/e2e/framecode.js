// Reads the capture time that the origin draws into each frame (DESIGN §3.2), from what the
// page actually displays: drawImage of the video in a requestVideoFrameCallback.
// Injected into pages with playwright's addInitScript; defines window.__liveshopFrameCode.
(() => {
  const CELLS = 48, ROWS = 24, BITS = 44;
  const canvas = document.createElement("canvas");
  let ctx = null;

  /** Capture time (ms since the epoch) shown by `video` right now, or null if unreadable. */
  function read(video) {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return null;
    if (canvas.width !== w || canvas.height !== ROWS) {
      canvas.width = w;
      canvas.height = ROWS;
      ctx = canvas.getContext("2d", { willReadFrequently: true });
    }
    // Only the code rows: the top ROWS rows of the frame, unscaled.
    ctx.drawImage(video, 0, 0, w, ROWS, 0, 0, w, ROWS);
    const px = ctx.getImageData(0, 0, w, ROWS).data;
    const mean = (cell) => {
      const x0 = Math.floor((cell * w) / CELLS), x1 = Math.floor(((cell + 1) * w) / CELLS);
      const qx0 = x0 + Math.floor((x1 - x0) / 4), qx1 = x1 - Math.floor((x1 - x0) / 4);
      let sum = 0, n = 0;
      for (let y = ROWS / 4; y < (ROWS * 3) / 4; y++) {
        for (let x = qx0; x < qx1; x++) {
          const i = (y * w + x) * 4;
          sum += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
          n++;
        }
      }
      return sum / n;
    };
    const white = mean(0), black = mean(1);
    if (white - black < 64) return null; // no code on screen
    const threshold = (white + black) / 2;
    const bit = (c) => (mean(c) > threshold ? 1 : 0);
    let value = 0, ones = 0;
    for (let c = 2; c < 2 + BITS; c++) {
      const b = bit(c);
      value = value * 2 + b;
      ones += b;
    }
    if (ones % 2 !== bit(46) || bit(47) !== 0) return null; // parity or guard failed
    return value;
  }

  /**
   * Calls `onSample(captureMs, metadata)` for every displayed frame whose code reads, and
   * `onUnreadable(metadata)` (if given) for one whose code does not.
   */
  function watch(video, onSample, onUnreadable) {
    let stopped = false;
    const tick = (_now, metadata) => {
      if (stopped) return;
      const captureMs = read(video);
      if (captureMs != null) onSample(captureMs, metadata);
      else onUnreadable?.(metadata);
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
    return () => (stopped = true);
  }

  window.__liveshopFrameCode = { read, watch };
})();
