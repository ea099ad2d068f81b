# liveshop's edge cache (Varnish 7, Debian's `varnish` package): in front of the origin, or in
# front of another edge (a shield). `scripts/edge.sh` and `tests/e2e/edge.mjs` start it with a
# `backend.vcl` of their own, which names the tier behind (the origin or the shield).
#
# Why Varnish: while one backend fetch is on its way, every client asking for the same object
# waits on it and then streams that one fetch as it arrives. The preload-hinted part is asked
# for by every viewer before it exists and is produced frame by frame: each viewer gets each
# frame as the origin sends it, from one origin request. (nginx's proxy_cache_lock collapses
# the misses too, but holds the waiters until the response is complete: a part's length late,
# see `bench/edge-choice.mjs`.)
#
# What it keeps, as the origin says (origin/src/http.rs):
# - playlists for `Surrogate-Control: max-age` (fractional seconds: about a part's length), a
#   blocking reload keyed by its `_HLS_msn`/`_HLS_part` (the query sorted, so any order is one
#   object); never served stale;
# - init, parts and segments for their `Cache-Control: max-age` (long: their bytes never change);
# - a 4xx or 5xx from the live routes for a second, never longer: a crowd asking for what is
#   missing costs the origin one request a second, and a fault is forgotten at once;
# - nothing of /orders, /cues (a stream per viewer), /admin, /demo, /stats, /net (emulated
#   links are per viewer).
# It answers `/clock` itself from its own clock (NTP-synced, like any CDN node's): a clock
# exchange through tiers would measure the tiers' queues, not the clock. (An origin run with
# `--clock-offset-ms`, a test knob, disagrees with it: clock tests run without an edge.)

vcl 4.1;

import std;

include "backend.vcl";

sub vcl_recv {
    if (req.url ~ "^/clock(\?|$)") {
        return (synth(200, "clock"));
    }
    if ((req.method != "GET" && req.method != "HEAD")
        || req.url ~ "^/(orders|cues|admin|demo|stats|net)(/|\?|$)") {
        return (pass);
    }
    set req.url = std.querysort(req.url);
    # Viewers carry no credentials for media; a cookie set by a storefront must not split the cache.
    unset req.http.Cookie;
    unset req.http.Authorization;
    return (hash);
}

sub vcl_backend_fetch {
    # Says to the tier behind that this client is an edge: it keeps Surrogate-Control for us.
    set bereq.http.Surrogate-Capability = "liveshop=Surrogate/1.0";
}

sub vcl_backend_response {
    if (bereq.url !~ "^/live/") {
        return (deliver);
    }
    if (beresp.status >= 400) {
        set beresp.ttl = 1s;
        set beresp.grace = 0s;
        set beresp.keep = 0s;
        return (deliver);
    }
    if (beresp.http.Surrogate-Control ~ "max-age=[0-9.]+") {
        set beresp.ttl = std.duration(
            regsub(beresp.http.Surrogate-Control, "^.*max-age=([0-9.]+).*$", "\1s"), 0s);
        # A stale playlist sends every viewer a part back: fetch afresh instead.
        set beresp.grace = 0s;
        set beresp.keep = 0s;
    }
    # Bodies go to every waiting client as they arrive (the hinted part, frame by frame).
    set beresp.do_stream = true;
    return (deliver);
}

sub vcl_deliver {
    # Viewers do not need the edge's instructions; a tier in front of us does.
    if (!req.http.Surrogate-Capability) {
        unset resp.http.Surrogate-Control;
    }
    if (obj.hits > 0) {
        set resp.http.X-Cache = "hit";
    } else {
        set resp.http.X-Cache = "miss";
    }
}

sub vcl_synth {
    if (resp.reason == "clock") {
        set resp.status = 200;
        set resp.reason = "OK";
        set resp.http.Content-Type = "application/json";
        set resp.http.Cache-Control = "no-store";
        set resp.http.Access-Control-Allow-Origin = "*";
        # Ms since the epoch with three decimals. VCL prints no REAL this large (15 digits at
        # most), so the whole seconds and the ms within them are printed apart, the latter
        # zero-padded to "sss.sss".
        # (time2integer rounds to the nearest second: half a second earlier, it floors.)
        set resp.http.X-S = std.time2integer(now - 0.5s, 0);
        set resp.http.X-Ms = regsub("00" + ((std.time2real(now, 0.0) - std.real(resp.http.X-S, 0.0)) * 1000.0),
            "^.*([0-9]{3}\.[0-9]{3})$", "\1");
        set resp.body = {"{"t1":"} + resp.http.X-S + resp.http.X-Ms + {","t2":"}
            + resp.http.X-S + resp.http.X-Ms + "}";
        unset resp.http.X-S;
        unset resp.http.X-Ms;
        return (deliver);
    }
}
