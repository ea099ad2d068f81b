// End to end: the real origin records its show to a fresh directory; after two cues and a few
// seconds the replay routes list it, its playlists carry one node per cue at the cue's capture
// instant, each keyframe byte range is a moof+mdat, the thumbnails exist; after a restart on the
// same directory the old show is still there, finished.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOrigin } from "./harness.mjs";

const TOKEN = "e2e-host-token";
const dir = mkdtempSync(join(tmpdir(), "liveshop-vod-"));
const args = ["--admin-token", TOKEN, "--record", dir, "--ledger", ":memory:"];
let origin;

before(async () => {
  origin = await startOrigin({ args });
});
after(async () => {
  await origin?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function text(path, init) {
  const res = await fetch(`${origin.url}${path}`, init);
  assert.ok(res.ok, `${path}: HTTP ${res.status}`);
  return res.text();
}

function post(id) {
  return fetch(`${origin.url}/admin/cues`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      id, productId: `sku-${id}`, title: "Red kettle", priceCents: 1999, currency: "EUR",
      url: "https://shop.example/p/1", imageUrl: "https://shop.example/i/1.jpg", durationS: 20,
    }),
  }).then((r) => r.json());
}

/** `KEY=value` pairs of an attribute list (quoted strings unquoted). */
function attributes(list) {
  const out = {};
  for (const m of list.matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) out[m[1]] = m[2].replace(/^"|"$/g, "");
  return out;
}

test("a recorded show is listed, its nodes sit at the cues' capture instants, its keyframe ranges are moofs, and it survives a restart", async () => {
  const first = await post("kettle");
  await sleep(2000);
  const second = await post("mug");
  await sleep(6000);

  const index = JSON.parse(await text("/vod/index.json"));
  assert.equal(index.shows.length, 1);
  const show = index.shows[0];
  assert.equal(show.live, true);
  assert.equal(show.nodes, 2);
  assert.ok(show.durationMs >= 5000, `${show.durationMs}`);
  const base = `/vod/${show.id}`;

  const master = await text(show.master);
  assert.match(master, /#EXT-X-STREAM-INF:BANDWIDTH=\d+,.*CODECS="avc1[^"]*",RESOLUTION=640x360.*\nshow\.m3u8\n/);
  assert.match(master, /#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=\d+,.*URI="iframes\.m3u8"/);

  const playlist = await text(show.playlist);
  assert.match(playlist, /#EXT-X-PLAYLIST-TYPE:EVENT\n/);
  assert.doesNotMatch(playlist, /#EXT-X-ENDLIST/);
  const nodes = playlist.split("\n").filter((l) => l.startsWith("#EXT-X-DATERANGE:")).map((l) => attributes(l.slice(17)));
  assert.deepEqual(nodes.map((n) => n.ID), ["kettle", "mug"]);
  assert.equal(nodes[0]["START-DATE"], first.startDate);
  assert.equal(nodes[0]["END-DATE"], second.startDate, "a node ends where the next starts");
  assert.equal(nodes[1]["START-DATE"], second.startDate);
  assert.match(nodes[0]["X-THUMBNAIL"], /^thumbs-0\.jpg#xywh=\d+,\d+,160,90$/);

  // Every keyframe's byte range is a moof, followed by its mdat.
  const iframes = (await text(`${base}/iframes.m3u8`)).split("\n");
  const ranges = [];
  iframes.forEach((l, i) => {
    const m = l.match(/^#EXT-X-BYTERANGE:(\d+)@(\d+)$/);
    if (m) ranges.push({ len: +m[1], at: +m[2], uri: iframes[i + 1] });
  });
  assert.ok(ranges.length >= 5, `${ranges.length} keyframes`);
  for (const r of ranges.slice(0, 3)) {
    const res = await fetch(`${origin.url}${base}/${r.uri}`, { headers: { range: `bytes=${r.at}-${r.at + r.len - 1}` } });
    assert.equal(res.status, 206);
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal(bytes.length, r.len);
    const kind = (o) => String.fromCharCode(...bytes.slice(o + 4, o + 8));
    const moofLen = new DataView(bytes.buffer).getUint32(0);
    assert.deepEqual([kind(0), kind(moofLen)], ["moof", "mdat"]);
  }

  // A stop and a start on the same directory: a new show, the old one finished and served.
  await origin.stop();
  origin = await startOrigin({ args });
  await sleep(1500);
  const again = JSON.parse(await text("/vod/index.json"));
  const old = again.shows.find((s) => s.id === show.id);
  assert.ok(old, JSON.stringify(again));
  assert.equal(old.live, false);
  assert.equal(old.nodes, 2);
  const replay = await text(old.playlist);
  assert.match(replay, /#EXT-X-PLAYLIST-TYPE:VOD\n/);
  assert.match(replay, /#EXT-X-ENDLIST\n$/);
  assert.equal((await fetch(`${origin.url}/vod/show-20000101T000000Z/show.m3u8`)).status, 404);

  // The old show's thumbnails are finished off at start.
  let vtt = "";
  for (let i = 0; i < 20 && !vtt.includes(" --> "); i++) {
    await sleep(500);
    vtt = await text(`${base}/thumbs.vtt`);
  }
  assert.match(vtt, /^WEBVTT\n\n00:00:00\.000 --> 00:00:01\.000\nthumbs-0\.jpg#xywh=0,0,160,90\n/);
  const jpeg = await fetch(`${origin.url}${base}/thumbs-0.jpg`);
  assert.equal(jpeg.headers.get("content-type"), "image/jpeg");
});

test("a show recorded ahead of time (--record-only) is served as a finished show with the same playlists, nodes, keyframes and thumbnails", async () => {
  const { execFileSync } = await import("node:child_process");
  const ahead = mkdtempSync(join(tmpdir(), "liveshop-ahead-"));
  try {
    const bin = process.env.ORIGIN_BIN ?? "target/debug/origin";
    const began = Date.now();
    // 30 s of show, a product every 5 s: made far faster than it lasts.
    const id = execFileSync(bin, ["--record", ahead, "--record-only", "30", "--script-cues", "5"], { encoding: "utf8" }).trim();
    const tookMs = Date.now() - began;
    assert.ok(tookMs < 30_000, `recording 30 s took ${tookMs} ms`);
    await origin.stop();
    origin = await startOrigin({ args: ["--record", ahead, "--ledger", ":memory:"] });
    const index = JSON.parse(await text("/vod/index.json"));
    const show = index.shows.find((s) => s.id === id);
    assert.ok(show, JSON.stringify(index));
    assert.equal(show.live, false);
    assert.equal(show.durationMs, 30_000);
    assert.equal(show.nodes, 5);
    const manifest = JSON.parse(await text(`/vod/${id}/manifest.json`));
    // Its frames stand for the instants from its start on, ahead of the wall clock then.
    assert.equal(manifest.segments[0].pdtMs, manifest.createdAtMs);
    assert.ok(manifest.createdAtMs > began - 5000 && manifest.createdAtMs < began + tookMs);
    assert.equal(manifest.endedAtMs, manifest.createdAtMs + 30_000);
    manifest.segments.forEach((s, i) => assert.equal(s.pdtMs, manifest.createdAtMs + i * 1000, `segment ${i}`));

    const master = await text(show.master);
    assert.match(master, /#EXT-X-STREAM-INF:BANDWIDTH=\d+,.*CODECS="avc1[^"]*,mp4a[^"]*",RESOLUTION=640x360.*\nshow\.m3u8\n/);
    assert.match(master, /#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=\d+,.*URI="iframes\.m3u8"/);
    const playlist = await text(show.playlist);
    assert.match(playlist, /#EXT-X-PLAYLIST-TYPE:VOD\n/);
    assert.match(playlist, /#EXT-X-ENDLIST\n$/);
    assert.equal(playlist.match(/#EXT-X-PROGRAM-DATE-TIME:/g).length, 30);
    const nodes = playlist.split("\n").filter((l) => l.startsWith("#EXT-X-DATERANGE:")).map((l) => attributes(l.slice(17)));
    // Product n is up (n + 1) * 5 + 3 s in: raised at the start of its 3 s countdown.
    assert.deepEqual(nodes.map((n) => Date.parse(n["START-DATE"]) - manifest.createdAtMs), [8000, 13000, 18000, 23000, 28000]);
    nodes.slice(0, -1).forEach((n, i) => assert.equal(n["END-DATE"], nodes[i + 1]["START-DATE"]));
    nodes.forEach((n) => assert.match(n["X-THUMBNAIL"], /^thumbs-0\.jpg#xywh=\d+,\d+,160,90$/));

    const iframes = (await text(`/vod/${id}/iframes.m3u8`)).split("\n");
    const ranges = [];
    iframes.forEach((l, i) => {
      const m = l.match(/^#EXT-X-BYTERANGE:(\d+)@(\d+)$/);
      if (m) ranges.push({ len: +m[1], at: +m[2], uri: iframes[i + 1] });
    });
    assert.equal(ranges.length, 30);
    for (const r of [ranges[0], ranges[17], ranges[29]]) {
      const res = await fetch(`${origin.url}/vod/${id}/${r.uri}`, { headers: { range: `bytes=${r.at}-${r.at + r.len - 1}` } });
      assert.equal(res.status, 206);
      const bytes = new Uint8Array(await res.arrayBuffer());
      const kind = (o) => String.fromCharCode(...bytes.slice(o + 4, o + 8));
      assert.deepEqual([kind(0), kind(new DataView(bytes.buffer).getUint32(0))], ["moof", "mdat"]);
    }
    const vtt = await text(`/vod/${id}/thumbs.vtt`);
    assert.match(vtt, /^WEBVTT\n\n00:00:00\.000 --> 00:00:01\.000\nthumbs-0\.jpg#xywh=0,0,160,90\n/);
    assert.match(vtt, /00:00:29\.000 --> 00:00:30\.000\nthumbs-0\.jpg#xywh=1440,180,160,90\n$/);
  } finally {
    await origin.stop();
    rmSync(ahead, { recursive: true, force: true });
  }
});
