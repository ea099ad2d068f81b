//! A deterministic simulation of everything around the live engine: an LL-HLS origin producing
//! real fMP4 parts (`prft` + `moof` + `mdat`) in simulated time, a seeded network, and a media
//! element that plays what was appended. Runs a minute of playback in milliseconds.

#![allow(dead_code)]

use std::collections::BTreeMap;

use liveshop::core::format::mp4::FragmentInfo;
use liveshop::core::io::{StorageOp, StorageResult, TabEvent, TabOp};
use liveshop::core::live::latency::SharedTarget;
use liveshop::core::{
    BufferOp, Deadline, Engine, Event, Frame, Instant, LiveConfig, LiveEngine, MediaEvent, MediaState, MediaTime,
    Output, RequestKind,
};

pub const TIMESCALE: u32 = 90_000;
/// Unix ms at simulated time zero.
pub const EPOCH_MS: f64 = 1_764_000_000_000.0;

fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(payload);
    v
}

fn full(version: u8, flags: u32, rest: &[u8]) -> Vec<u8> {
    let mut v = (((version as u32) << 24) | flags).to_be_bytes().to_vec();
    v.extend_from_slice(rest);
    v
}

/// The live source and packager: parts of `part_ms`, `parts_per_segment` to a GOP, in every
/// rendition of the ladder, aligned as one encoder makes them. Rendition `name` has its media
/// playlist at `/live/<name>.m3u8` and its media under `/live/<name>/`; the multivariant
/// playlist listing them all is `/live/show-abr.m3u8`.
#[derive(Clone, Debug)]
pub struct Origin {
    pub fps: u32,
    pub part_ms: u32,
    pub parts_per_segment: u32,
    /// Capture to "part complete at the origin", beyond the part's own length.
    pub encode_ms: f64,
    /// (name, bytes per part, BANDWIDTH in bits/s), top first.
    pub renditions: Vec<(&'static str, usize, u64)>,
    pub window_segments: u64,
    /// Product cues the host raises.
    pub cues: Vec<SimCue>,
    /// The encoder restarts at this segment: its decode times start again from 0 and the
    /// playlist marks the discontinuity.
    pub restart_at_segment: Option<u64>,
}

/// A product cue as the simulated host raises it: announced at one capture instant, its link
/// up at another, carried in-band (`emsg` in the part being captured when it is announced), in
/// the playlist (EXT-X-DATERANGE from the announcement on) and on the cue channel.
#[derive(Clone, Debug)]
pub struct SimCue {
    pub id: String,
    /// Capture instants (simulated ms): when the host announces it, when the link goes up.
    pub announce_ms: f64,
    pub start_ms: f64,
    pub duration_s: f64,
    pub countdown_s: u32,
    pub in_band: bool,
    pub in_playlist: bool,
    pub on_channel: bool,
    /// A shared latency target for the sale (X-TARGET-LATENCY-MS).
    pub target_latency_ms: Option<f64>,
}

impl SimCue {
    pub fn new(id: &str, start_ms: f64, countdown_s: u32) -> Self {
        SimCue {
            id: id.into(),
            announce_ms: start_ms - f64::from(countdown_s) * 1000.0 - 1000.0,
            start_ms,
            duration_s: 5.0,
            countdown_s,
            in_band: true,
            in_playlist: true,
            on_channel: true,
            target_latency_ms: None,
        }
    }

    /// The attribute list every source carries.
    pub fn attributes(&self) -> String {
        let mut countdown =
            if self.countdown_s > 0 { format!(",X-COUNTDOWN={}", self.countdown_s) } else { String::new() };
        if let Some(t) = self.target_latency_ms {
            countdown += &format!(",X-TARGET-LATENCY-MS={t}");
        }
        format!(
            "ID=\"{}\",CLASS=\"com.liveshop.product\",START-DATE=\"{}\",DURATION={:.3},X-PRODUCT-ID=\"sku-{}\",\
X-TITLE=\"Kettle\",X-PRICE-CENTS=1999,X-CURRENCY=\"EUR\",X-URL=\"https://shop.example/p/1\"{countdown}",
            self.id,
            iso_date(EPOCH_MS + self.start_ms),
            self.duration_s,
            self.id,
        )
    }
}

/// `ms` since the epoch as an ISO 8601 UTC date with milliseconds.
fn iso_date(ms: f64) -> String {
    let total_ms = ms.round() as i64;
    let (days, ms_of_day) = (total_ms.div_euclid(86_400_000), total_ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, sec, milli) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{milli:03}Z")
}

impl Default for Origin {
    fn default() -> Self {
        // About what the real origin's encoder makes of its synthetic show.
        Origin {
            fps: 30,
            part_ms: 200,
            parts_per_segment: 5,
            encode_ms: 60.0,
            renditions: vec![("show", 12_500, 1_000_000), ("show-300k", 5_000, 420_000)],
            window_segments: 6,
            cues: Vec::new(),
            restart_at_segment: None,
        }
    }
}

impl Origin {
    fn frames_per_part(&self) -> u64 {
        (self.fps * self.part_ms / 1000) as u64
    }
    /// Frame `k`'s decode time, in frames: counted from the last encoder start.
    fn decode_frame(&self, frame: u64) -> u64 {
        match self.restart_at_segment.map(|s| self.first_frame(s, 0)) {
            Some(start) if frame >= start => frame - start,
            _ => frame,
        }
    }
    fn first_frame(&self, msn: u64, part: u32) -> u64 {
        (msn * self.parts_per_segment as u64 + part as u64) * self.frames_per_part()
    }
    /// Capture wall clock (simulated ms) of frame `k`.
    pub fn capture_ms(&self, frame: u64) -> f64 {
        frame as f64 * 1000.0 / self.fps as f64
    }
    /// When part (msn, part) is complete at the origin.
    pub fn ready_at(&self, msn: u64, part: u32) -> f64 {
        let last = self.first_frame(msn, part) + self.frames_per_part();
        self.capture_ms(last) + self.encode_ms
    }
    /// The newest complete part at time `t`, as (msn, part).
    pub fn newest(&self, t: f64) -> Option<(u64, u32)> {
        let frames = ((t - self.encode_ms) * self.fps as f64 / 1000.0).floor();
        if frames < self.frames_per_part() as f64 {
            return None;
        }
        let parts = frames as u64 / self.frames_per_part();
        let n = parts - 1;
        Some((n / self.parts_per_segment as u64, (n % self.parts_per_segment as u64) as u32))
    }

    pub fn init(&self) -> Vec<u8> {
        let mut tkhd = vec![0u8; 8];
        tkhd.extend_from_slice(&1u32.to_be_bytes());
        tkhd.extend_from_slice(&[0u8; 72]);
        let tkhd = bx(b"tkhd", &full(0, 3, &tkhd));
        let mut mdhd = vec![0u8; 8];
        mdhd.extend_from_slice(&TIMESCALE.to_be_bytes());
        mdhd.extend_from_slice(&[0u8; 8]);
        let mdhd = bx(b"mdhd", &full(0, 0, &mdhd));
        let mut hdlr = vec![0u8; 4];
        hdlr.extend_from_slice(b"vide");
        hdlr.extend_from_slice(&[0u8; 13]);
        let hdlr = bx(b"hdlr", &full(0, 0, &hdlr));
        let avcc = bx(b"avcC", &[1, 0x42, 0xc0, 0x1e, 0xff, 0xe0, 0x00]);
        let mut avc1 = vec![0u8; 78];
        avc1.extend(avcc);
        let mut stsd = 1u32.to_be_bytes().to_vec();
        stsd.extend(bx(b"avc1", &avc1));
        let stbl = bx(b"stbl", &bx(b"stsd", &full(0, 0, &stsd)));
        let minf = bx(b"minf", &stbl);
        let mdia = bx(b"mdia", &[mdhd, hdlr, minf].concat());
        let trak = bx(b"trak", &[tkhd, mdia].concat());
        [bx(b"ftyp", b"iso6\0\0\0\0"), bx(b"moov", &trak)].concat()
    }

    /// One part as the real origin makes it: a `prft` with the capture time of its first
    /// frame, then a `moof` + `mdat` per frame (a response usually brings several at once).
    pub fn part(&self, rendition: usize, msn: u64, part: u32) -> Vec<u8> {
        let first = self.first_frame(msn, part);
        let frame_ticks = TIMESCALE / self.fps;
        // prft: the capture time of the part's first frame, NTP format.
        let wall_s = (EPOCH_MS + self.capture_ms(first)) / 1000.0;
        let ntp = (((wall_s.floor() as u64) + 2_208_988_800) << 32) | ((wall_s.fract() * 4_294_967_296.0) as u64);
        let mut prft = 1u32.to_be_bytes().to_vec();
        prft.extend_from_slice(&ntp.to_be_bytes());
        prft.extend_from_slice(&(self.decode_frame(first) * frame_ticks as u64).to_be_bytes());
        let mut out = bx(b"prft", &full(1, 0, &prft));
        // Cues announced while this part was captured ride in it.
        let (from, to) = (self.capture_ms(first), self.capture_ms(first + self.frames_per_part()));
        for (k, cue) in
            self.cues.iter().enumerate().filter(|(_, c)| c.in_band && c.announce_ms >= from && c.announce_ms < to)
        {
            let data = cue.attributes();
            let emsg = liveshop::core::format::mp4::emsg::Emsg {
                scheme_id_uri: "urn:liveshop:cue:1",
                value: "",
                timescale: TIMESCALE,
                time: liveshop::core::format::mp4::emsg::EmsgTime::Absolute(
                    (cue.start_ms * f64::from(TIMESCALE) / 1000.0) as u64,
                ),
                event_duration: (cue.duration_s * f64::from(TIMESCALE)) as u32,
                id: k as u32,
                message_data: data.as_bytes(),
            };
            out.extend(emsg.to_bytes().expect("a valid emsg"));
        }

        let frames = self.frames_per_part();
        let frame_bytes = self.renditions[rendition].1 / frames as usize;
        for i in 0..frames {
            let mut tfhd = 1u32.to_be_bytes().to_vec();
            tfhd.extend_from_slice(&frame_ticks.to_be_bytes());
            tfhd.extend_from_slice(&0x0101_0000u32.to_be_bytes());
            let tfhd = bx(b"tfhd", &full(0, 0x28, &tfhd));
            let tfdt = bx(b"tfdt", &full(1, 0, &(self.decode_frame(first + i) * frame_ticks as u64).to_be_bytes()));
            let mut trun = 1u32.to_be_bytes().to_vec();
            let flags: u32 = if part == 0 && i == 0 { 0x0200_0000 } else { 0x0101_0000 };
            trun.extend_from_slice(&flags.to_be_bytes());
            let trun = bx(b"trun", &full(0, 0x004, &trun));
            out.extend(bx(b"moof", &bx(b"traf", &[tfhd, tfdt, trun].concat())));
            out.extend(bx(b"mdat", &vec![0u8; frame_bytes]));
        }
        out
    }

    pub fn multivariant(&self) -> String {
        let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n");
        for (name, _, bandwidth) in &self.renditions {
            out += &format!("#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS=\"avc1.42c01e\"\n{name}.m3u8\n");
        }
        out
    }

    /// Rendition `name`'s media playlist as it stands at time `t` (None before the first part).
    pub fn playlist(&self, name: &str, t: f64) -> Option<String> {
        let (msn, part) = self.newest(t)?;
        let pps = self.parts_per_segment;
        let part_s = self.part_ms as f64 / 1000.0;
        let first_msn = (msn + 1).saturating_sub(self.window_segments);
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}\n#EXT-X-PART-INF:PART-TARGET={part_s:.3}\n#EXT-X-MEDIA-SEQUENCE:{first_msn}\n#EXT-X-MAP:URI=\"{name}/init.mp4\"\n",
            3.0 * part_s
        );
        // The capture instant of the newest frame listed.
        let newest_capture = self.capture_ms(self.first_frame(msn, part) + self.frames_per_part());
        for cue in self.cues.iter().filter(|c| c.in_playlist && c.announce_ms <= newest_capture) {
            out += &format!("#EXT-X-DATERANGE:{}\n", cue.attributes());
        }
        for m in first_msn..=msn {
            if self.restart_at_segment == Some(m) {
                out += "#EXT-X-DISCONTINUITY\n";
            }
            let last_part = if m == msn { part + 1 } else { pps };
            if m + 3 > msn {
                for p in 0..last_part {
                    let ind = if p == 0 { ",INDEPENDENT=YES" } else { "" };
                    out += &format!("#EXT-X-PART:DURATION={part_s:.3},URI=\"{name}/{m}.{p}.m4s\"{ind}\n");
                }
            }
            // Like the real packager, a segment is closed once the next one has begun.
            if m < msn {
                out += &format!("#EXTINF:{:.3},\n{name}/{m}.m4s\n", part_s * pps as f64);
            }
        }
        let (hm, hp) = if part + 1 == pps { (msn + 1, 0) } else { (msn, part + 1) };
        out += &format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{name}/{hm}.{hp}.m4s\"\n");
        Some(out)
    }
}

/// A seeded network path: per-response delay = base + uniform jitter, with order preserved;
/// optionally paced by a cellular trace (one 1500-byte packet per listed millisecond).
pub struct Network {
    pub one_way_ms: f64,
    pub jitter_ms: f64,
    /// Periods (start, end) in ms during which nothing is delivered.
    pub outages: Vec<(f64, f64)>,
    trace: Vec<u32>,
    trace_pos: usize,
    trace_cycle: u64,
    next_free: f64,
    rng: u64,
    last_delivery: f64,
}

impl Network {
    pub fn new(one_way_ms: f64, jitter_ms: f64, seed: u64) -> Self {
        Network {
            one_way_ms,
            jitter_ms,
            outages: Vec::new(),
            trace: Vec::new(),
            trace_pos: 0,
            trace_cycle: 0,
            next_free: 0.0,
            rng: seed.max(1),
            last_delivery: 0.0,
        }
    }

    /// A link paced by a trace file from `../shared/traces`, starting `offset_ms` into it.
    /// Without the traces folder the test fails: a trace test that skipped itself would pass
    /// without having run.
    pub fn from_trace(file: &str, one_way_ms: f64, offset_ms: f64) -> Self {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/traces");
        assert!(
            dir.is_dir(),
            "the cellular traces folder {} is missing: the trace tests need it next to the repository (../shared/traces), as CI has it",
            dir.display()
        );
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("trace {}: {e}", path.display()));
        let trace: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        assert!(!trace.is_empty(), "empty trace {file}");
        // Rotate so that simulated time 0 is `offset_ms` into the trace.
        let period = trace[trace.len() - 1] + 1;
        let offset = (offset_ms as u32) % period;
        let split = trace.partition_point(|&t| t < offset);
        let rotated = trace[split..]
            .iter()
            .map(|t| t - offset)
            .chain(trace[..split].iter().map(|t| t + period - offset))
            .collect();
        let mut n = Network::new(one_way_ms, 0.0, 1);
        n.trace = rotated;
        n
    }

    /// A link that carries `kbps` steadily (a packet every so often), `one_way_ms` away.
    pub fn capped(one_way_ms: f64, kbps: f64) -> Self {
        let per_packet_ms = 1500.0 * 8.0 / kbps;
        let mut n = Network::new(one_way_ms, 0.0, 1);
        n.trace = (0..(60_000.0 / per_packet_ms) as u32).map(|i| (i as f64 * per_packet_ms) as u32).collect();
        n
    }

    /// When a response of `bytes` leaving at `sent` has fully arrived.
    fn deliver_bytes(&mut self, sent: f64, bytes: usize) -> f64 {
        if self.trace.is_empty() {
            return self.deliver(sent);
        }
        let period = *self.trace.last().unwrap_or(&1) as f64 + 1.0;
        let mut depart = sent.max(self.next_free);
        for _ in 0..bytes.div_ceil(1500).max(1) {
            loop {
                let at = self.trace_cycle as f64 * period + self.trace[self.trace_pos] as f64;
                self.trace_pos += 1;
                if self.trace_pos == self.trace.len() {
                    self.trace_pos = 0;
                    self.trace_cycle += 1;
                }
                if at >= depart {
                    depart = at;
                    break;
                }
            }
        }
        self.next_free = depart;
        let at = (depart + self.one_way_ms).max(self.last_delivery);
        self.last_delivery = at;
        at
    }
    fn uniform(&mut self) -> f64 {
        // xorshift64*: tiny, seedable, good enough for jitter.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// When a response leaving the server at `sent` arrives.
    fn deliver(&mut self, sent: f64) -> f64 {
        let mut at = sent + self.one_way_ms + self.uniform() * self.jitter_ms;
        for &(s, e) in &self.outages {
            if at >= s && at < e {
                at = e + self.one_way_ms;
            }
        }
        at = at.max(self.last_delivery);
        self.last_delivery = at;
        at
    }
}

/// A media element: buffered ranges from what was appended; plays at the set rate.
#[derive(Default)]
struct Element {
    buffered: Vec<(f64, f64)>,
    current_time: f64,
    rate: f64,
    play_requested: bool,
    playing: bool,
    /// A seek shows its first frame only after decoding from the keyframe before it.
    seek_done_at: f64,
}

/// How long a seek takes to show its first frame (50-100 ms measured in headless Chromium).
const SEEK_DECODE_MS: f64 = 80.0;

impl Element {
    fn add_range(&mut self, s: f64, e: f64) {
        self.buffered.push((s, e));
        self.buffered.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::new();
        for r in self.buffered.drain(..) {
            match merged.last_mut() {
                Some(last) if r.0 <= last.1 + 0.01 => last.1 = last.1.max(r.1),
                _ => merged.push(r),
            }
        }
        self.buffered = merged;
    }
    fn ahead(&self) -> f64 {
        self.buffered
            .iter()
            .find(|(s, e)| *s <= self.current_time + 0.01 && self.current_time < *e)
            .map_or(0.0, |(_, e)| e - self.current_time)
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub ttff_ms: Option<f64>,
    /// True latency samples (every 200 ms after the first frame), ms.
    pub latencies: Vec<f64>,
    /// Latency the engine reported in the same instants.
    pub reported: Vec<f64>,
    pub stall_count: u32,
    pub stall_ms: f64,
    pub played_ms: f64,
    pub rate_changes: u32,
    pub errors: Vec<String>,
    pub seeks: u32,
    pub final_target_ms: f64,
    /// The engine's target at each latency sample.
    pub targets: Vec<f64>,
    /// How many times each media URL was requested.
    pub media_requests: BTreeMap<String, u32>,
    pub playlist_requests: u32,
    /// Variant switches: (simulated ms, variant index).
    pub switches: Vec<(f64, usize)>,
    /// Pop-ups: (simulated ms, cue id, capture instant of the frame on screen then, late ms).
    pub cues: Vec<(f64, String, f64, f64)>,
    /// Countdowns: (simulated ms, cue id, seconds, capture instant on screen then).
    pub countdowns: Vec<(f64, String, u32, f64)>,
    /// Cue ends: (simulated ms, cue id).
    pub cue_ends: Vec<(f64, String)>,
    /// Shared-target states told: (simulated ms, state).
    pub shared: Vec<(f64, SharedTarget)>,
    /// Requests to an API (orders), not answered by this origin: (simulated ms, request).
    pub api_requests: Vec<(f64, liveshop::core::Request)>,
    /// Storage and tab operations, in order: (simulated ms, what).
    pub storage_and_tabs: Vec<(f64, String)>,
    /// Order updates: (simulated ms, update).
    pub orders: Vec<(f64, liveshop::core::orders::OrderUpdate)>,
}

impl Report {
    pub fn quantile(&self, q: f64) -> f64 {
        let mut v = self.latencies.clone();
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1))).copied().unwrap_or(f64::NAN)
    }
    /// Seconds until latency first stays within 25 % of the target for 5 s running.
    pub fn convergence_s(&self) -> Option<f64> {
        let ok: Vec<bool> = self.latencies.iter().zip(&self.targets).map(|(l, t)| (l - t).abs() <= 0.25 * t).collect();
        let run = 25; // 5 s of 200 ms samples
        (0..ok.len().saturating_sub(run)).find(|&i| ok[i..i + run].iter().all(|&b| b)).map(|i| i as f64 * 0.2)
    }

    pub fn stall_ratio(&self) -> f64 {
        self.stall_ms / (self.stall_ms + self.played_ms).max(1.0)
    }
}

enum Pending {
    Chunk(u64, Vec<u8>),
    End(u64, Result<(), u16>),
}

/// Runs the engine for `duration_ms` against `origin` over `net`.
pub fn run(origin: &Origin, net: &mut Network, config: LiveConfig, join_at_ms: f64, duration_ms: f64) -> Report {
    run_with_freeze(origin, net, config, join_at_ms, duration_ms, None)
}

/// As [`run`], with the page frozen (a background tab: no timers, no playback, nothing
/// delivered to the page) from `frozen.0` to `frozen.1` ms.
pub fn run_with_freeze(
    origin: &Origin,
    net: &mut Network,
    config: LiveConfig,
    join_at_ms: f64,
    duration_ms: f64,
    frozen: Option<(f64, f64)>,
) -> Report {
    run_scripted(origin, net, config, join_at_ms, duration_ms, frozen, &mut |_, _, _| {})
}

/// What a test does to the engine at each step, as a page would (a tap): (engine, simulated
/// ms, the report so far).
pub type Script<'a> = &'a mut dyn FnMut(&mut LiveEngine, f64, &mut Report);

/// As [`run_with_freeze`], with `script` called at every step. Storage writes succeed and
/// locks are granted at once; API requests are recorded, never answered.
pub fn run_scripted(
    origin: &Origin,
    net: &mut Network,
    config: LiveConfig,
    join_at_ms: f64,
    duration_ms: f64,
    frozen: Option<(f64, f64)>,
    script: Script,
) -> Report {
    let mut engine = LiveEngine::new(config).expect("valid config");
    let mut el = Element { rate: 1.0, ..Default::default() };
    // The `SourceBuffer`'s timestamp offset, as the engine sets it.
    let mut timestamp_offset = 0.0;
    let mut report = Report::default();
    // Deliveries keyed by (time in µs, sequence) so equal times keep their order.
    let mut queue: BTreeMap<(u64, u64), Pending> = BTreeMap::new();
    let mut seq = 0u64;
    let mut push = |queue: &mut BTreeMap<(u64, u64), Pending>, at: f64, p: Pending| {
        seq += 1;
        queue.insert(((at * 1000.0) as u64, seq), p);
    };
    // Blocked requests wait for the origin: (ready time, id, what).
    let mut blocked: Vec<(f64, u64, String)> = Vec::new();
    let wall = |t: f64| Instant::new(EPOCH_MS + t);
    // The engine's next deadline: it is woken then as well as on the 100 ms tick, as the browser
    // driver wakes it; the element is sampled on the tick.
    let mut deadline: Option<Deadline> = None;

    let step = 5.0;
    let mut t = join_at_ms;
    let end = join_at_ms + duration_ms;
    engine.start(wall(t));
    let mut next_tick = t;
    let mut next_sample = t;
    let mut waiting_since: Option<f64> = None;
    // The cue channel: its request, and how many cues it has sent.
    let mut channel: Option<(u64, usize)> = None;
    let mut last_frame_reported: Option<u64> = None;
    let mut first_frame_at: Option<f64> = None;

    while t < end {
        // 1. origin: release blocked requests whose media now exists
        let mut i = 0;
        while i < blocked.len() {
            if blocked[i].0 <= t {
                let (_, id, url) = blocked.remove(i);
                let body = serve(origin, &url, t);
                let at = net.deliver_bytes(t, body.as_ref().map_or(0, |b| b.len()));
                match body {
                    Ok(b) => {
                        push(&mut queue, at, Pending::Chunk(id, b));
                        push(&mut queue, at, Pending::End(id, Ok(())));
                    }
                    Err(s) => push(&mut queue, at, Pending::End(id, Err(s))),
                }
            } else {
                i += 1;
            }
        }
        // The cue channel sends each cue as the host announces it (the stream stays open).
        if let Some((id, sent)) = &mut channel {
            let due: Vec<&SimCue> =
                origin.cues.iter().filter(|c| c.on_channel && c.announce_ms <= t).skip(*sent).collect();
            for cue in due {
                *sent += 1;
                let body = format!("event: cue\nid: {}\ndata: {}\n\n", cue.id, cue.attributes());
                let at = net.deliver_bytes(t, body.len());
                push(&mut queue, at, Pending::Chunk(*id, body.into_bytes()));
            }
        }
        if frozen.is_some_and(|(from, to)| t >= from && t < to) {
            // The origin keeps producing and answering (above); the page sees nothing until
            // it thaws.
            if first_frame_at.is_some() && t >= next_sample {
                next_sample += 200.0;
                report.latencies.push(t - origin.capture_ms((el.current_time * origin.fps as f64) as u64));
                report.targets.push(engine.stats().target_latency_ms);
            }
            t += step;
            next_tick = t;
            continue;
        }
        // 2. network deliveries due now
        while let Some((&k, _)) = queue.first_key_value() {
            if k.0 as f64 / 1000.0 > t {
                break;
            }
            match queue.remove(&k) {
                Some(Pending::Chunk(id, bytes)) => engine.handle_fetch_chunk(wall(t), id, &bytes),
                Some(Pending::End(id, r)) => {
                    let r = r.map_err(|status| liveshop::core::PlayerError::HttpStatus { url: String::new(), status });
                    engine.handle_fetch_end(wall(t), id, r)
                }
                None => {}
            }
        }
        // 3. the media element plays
        let seeking = t < el.seek_done_at;
        // Every new frame on screen is reported while the engine watches frames.
        let on_screen = (el.current_time * origin.fps as f64) as u64;
        if el.playing && !seeking && engine.wants_frames() && last_frame_reported != Some(on_screen) {
            last_frame_reported = Some(on_screen);
            let frame = Frame {
                media_time: MediaTime::new(on_screen as f64 / origin.fps as f64),
                expected_display: wall(t),
                presented_frames: on_screen as u32,
            };
            engine.handle_frame(wall(t), frame);
        }
        if el.playing && !seeking {
            if el.ahead() > 0.0 {
                let adv = (step / 1000.0 * el.rate).min(el.ahead());
                el.current_time += adv;
                report.played_ms += adv * 1000.0;
                if el.ahead() <= 0.0 {
                    el.playing = false;
                    waiting_since = Some(t);
                    engine.handle_media_event(wall(t), MediaEvent::Waiting);
                }
            }
        } else if el.play_requested && !seeking && el.ahead() >= 0.1 {
            el.playing = true;
            first_frame_at.get_or_insert(t);
            if let Some(s) = waiting_since.take() {
                report.stall_ms += t - s;
                report.stall_count += 1;
            }
            engine.handle_media_event(wall(t), MediaEvent::Playing);
        }
        let due = deadline.filter(|d| wall(t) >= d.at);
        let tick = t >= next_tick;
        if tick {
            next_tick += 100.0;
        }
        if tick {
            let state = MediaState {
                current_time: MediaTime::new(el.current_time),
                buffered: el.buffered.iter().map(|&(s, e)| (MediaTime::new(s), MediaTime::new(e))).collect(),
                paused: !el.play_requested,
                seeking,
                hidden: false,
                dropped_frames: 0,
            };
            engine.handle_media_state(wall(t), state);
        }
        if tick || due.is_some() {
            engine.handle_timeout(wall(t));
        }
        if std::env::var_os("SIM_TRACE").is_some() && (t as u64).is_multiple_of(1000) {
            eprintln!(
                "t={t} ct={:.2} buf={:?} playing={} blocked={} queued={} lat={:?} tgt={:.0}",
                el.current_time,
                el.buffered,
                el.playing,
                blocked.len(),
                queue.len(),
                engine.stats().latency_ms.map(|l| l as i64),
                engine.stats().target_latency_ms
            );
        }
        if first_frame_at.is_some() && t >= next_sample {
            next_sample += 200.0;
            report.latencies.push(t - origin.capture_ms((el.current_time * origin.fps as f64) as u64));
            report.targets.push(engine.stats().target_latency_ms);
            if let Some(l) = engine.stats().latency_ms {
                report.reported.push(l);
            }
        }
        script(&mut engine, t, &mut report);
        // 4. carry out the engine's outputs
        loop {
            match engine.poll_output() {
                Output::Fetch(req) => {
                    // The uplink is not modelled beyond its delay: requests are small.
                    let arrive = t + net.one_way_ms;
                    let url = req.url.clone();
                    match req.kind {
                        RequestKind::Media => *report.media_requests.entry(url.clone()).or_default() += 1,
                        RequestKind::Playlist => report.playlist_requests += 1,
                        _ => {}
                    }
                    if req.kind == RequestKind::Api {
                        report.api_requests.push((t, req));
                        continue;
                    }
                    if req.kind == RequestKind::EventStream {
                        channel = Some((req.id, 0));
                        continue;
                    }
                    let ready = match req.kind {
                        RequestKind::Clock => Some(arrive),
                        _ => ready_time(origin, &url),
                    };
                    match ready {
                        Some(r) if r <= arrive.max(t) => blocked.push((arrive.max(t), req.id, url)),
                        Some(r) => blocked.push((r, req.id, url)),
                        None => blocked.push((arrive, req.id, url)),
                    }
                }
                Output::CancelFetch(id) => {
                    blocked.retain(|b| b.1 != id);
                    channel = channel.filter(|c| c.0 != id);
                }
                Output::OpenSourceBuffer { .. } => {}
                Output::Buffer(op) => {
                    if let BufferOp::TimestampOffset(offset) = op {
                        timestamp_offset = offset;
                    }
                    if let BufferOp::Append(bytes) = &op {
                        if let Ok(info) = FragmentInfo::parse(bytes) {
                            for r in &info.runs {
                                let s = r.base_decode_time as f64 / TIMESCALE as f64 + timestamp_offset;
                                el.add_range(s, s + r.duration as f64 / TIMESCALE as f64);
                            }
                        }
                    }
                    if let BufferOp::Remove { start, end } = op {
                        let (start, end) = (start.get(), end.get());
                        el.buffered.retain(|r| r.1 > end || r.0 < start);
                        for r in &mut el.buffered {
                            if r.0 >= start && r.0 < end {
                                r.0 = end;
                            }
                        }
                    }
                    engine.handle_buffer_done(wall(t));
                }
                Output::Seek(pos) => {
                    el.current_time = pos.get();
                    el.seek_done_at = t + SEEK_DECODE_MS;
                    report.seeks += 1;
                }
                Output::SetRate(r) => {
                    el.rate = r;
                    report.rate_changes += 1;
                }
                Output::Play => el.play_requested = true,
                Output::Pause => el.play_requested = false,
                Output::Event(Event::Error { error, .. }) => report.errors.push(error.to_string()),
                Output::Event(Event::Variant { index, .. }) => report.switches.push((t, index)),
                Output::Event(Event::Cue(shown)) => {
                    let on_screen = origin.capture_ms((el.current_time * origin.fps as f64) as u64);
                    report.cues.push((t, shown.cue.id, on_screen, shown.late_ms));
                }
                Output::Event(Event::Countdown { id, seconds }) => {
                    let on_screen = origin.capture_ms((el.current_time * origin.fps as f64) as u64);
                    report.countdowns.push((t, id, seconds, on_screen));
                }
                Output::Event(Event::CueEnd { id }) => report.cue_ends.push((t, id)),
                Output::Event(Event::SharedTarget { state, .. }) => report.shared.push((t, state)),
                Output::Event(Event::Order(update)) => report.orders.push((t, update)),
                Output::Event(_) => {}
                Output::Storage(op) => {
                    report.storage_and_tabs.push((t, format!("{op:?}")));
                    match op {
                        StorageOp::Put { key, .. } => engine.handle_storage(wall(t), StorageResult::Stored { key }),
                        StorageOp::List { prefix } => {
                            engine.handle_storage(wall(t), StorageResult::Listed { prefix, entries: Vec::new() })
                        }
                        StorageOp::Delete { key } => engine.handle_storage(wall(t), StorageResult::Deleted { key }),
                    }
                }
                Output::Tab(op) => {
                    report.storage_and_tabs.push((t, format!("{op:?}")));
                    if let TabOp::Acquire { lock } = op {
                        engine.handle_tab(wall(t), TabEvent::Acquired { lock });
                    }
                }
                Output::Timeout(d) => {
                    deadline = d;
                    break;
                }
            }
        }
        t += step;
    }
    report.ttff_ms = first_frame_at.map(|f| f - join_at_ms);
    report.final_target_ms = engine.stats().target_latency_ms;
    if let Some(s) = waiting_since {
        report.stall_ms += end - s;
    }
    report
}

/// Parses `…/<msn>.<part>.m4s`, `…/<msn>.m4s` and playlist `_HLS_msn/_HLS_part` into the time
/// the origin can answer (None: answer at once).
fn ready_time(origin: &Origin, url: &str) -> Option<f64> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if path.ends_with(".m3u8") {
        let get = |k: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')).and_then(|v| v.parse::<u64>().ok()))
        };
        let msn = get("_HLS_msn")?;
        // Without a part: the segment is closed once the next one has begun.
        return Some(match get("_HLS_part") {
            Some(p) => origin.ready_at(msn, p as u32),
            None => origin.ready_at(msn + 1, 0),
        });
    }
    let name = path.rsplit('/').next()?.strip_suffix(".m4s")?;
    let mut it = name.split('.');
    let msn: u64 = it.next()?.parse().ok()?;
    let part = match it.next() {
        Some(p) => p.parse().ok()?,
        None => origin.parts_per_segment - 1,
    };
    Some(origin.ready_at(msn, part))
}

fn serve(origin: &Origin, url: &str, t: f64) -> Result<Vec<u8>, u16> {
    let path = url.split('?').next().unwrap_or(url);
    if path.ends_with("/clock") {
        let now = EPOCH_MS + t;
        return Ok(format!("{{\"t1\":{now},\"t2\":{now}}}").into_bytes());
    }
    let mut segments = path.rsplit('/');
    let file = segments.next().unwrap_or_default();
    if file == "show-abr.m3u8" {
        return Ok(origin.multivariant().into_bytes());
    }
    if let Some(name) = file.strip_suffix(".m3u8") {
        origin.renditions.iter().find(|r| r.0 == name).ok_or(404u16)?;
        return origin.playlist(name, t).map(String::into_bytes).ok_or(503);
    }
    let dir = segments.next().unwrap_or_default();
    let rendition = origin.renditions.iter().position(|r| r.0 == dir).ok_or(404u16)?;
    if file == "init.mp4" {
        return Ok(origin.init());
    }
    let name = file.strip_suffix(".m4s").ok_or(404u16)?;
    let mut it = name.split('.');
    let msn: u64 = it.next().and_then(|m| m.parse().ok()).ok_or(404u16)?;
    match it.next() {
        Some(p) => Ok(origin.part(rendition, msn, p.parse().map_err(|_| 404u16)?)),
        None => Ok((0..origin.parts_per_segment).flat_map(|p| origin.part(rendition, msn, p)).collect()),
    }
}
