#!/usr/bin/env bash
# `make edge`: the origin with a live show behind a Varnish edge cache (edge/liveshop.vcl), as
# viewers at scale are served. `SHIELD=1` puts a second tier (a shield) between them.
#   viewers -> edge (LISTEN) [-> shield (SHIELD_LISTEN)] -> origin (ORIGIN_LISTEN)
# Extra arguments go to the origin. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."

LISTEN="${LISTEN:-127.0.0.1:8080}"
ORIGIN_LISTEN="${ORIGIN_LISTEN:-127.0.0.1:8081}"
SHIELD_LISTEN="${SHIELD_LISTEN:-127.0.0.1:8082}"
# Worker threads kept ready per edge (see tests/e2e/edge.mjs: a viewer streaming the hinted
# part holds one while it is delivered).
THREADS_MIN="${EDGE_THREADS_MIN:-1200}"

work="$(mktemp -d /tmp/liveshop-edge.XXXXXX)"
chmod 755 "$work" # varnishd compiles the VCL as an unprivileged user
pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# varnish NAME LISTEN BACKEND(host:port)
varnish() {
  local dir="$work/$1"
  mkdir -p "$dir" && chmod 755 "$dir"
  printf 'backend default { .host = "%s"; .port = "%s"; .connect_timeout = 1s; }\n' "${3%:*}" "${3##*:}" >"$dir/backend.vcl"
  varnishd -F -n "$dir/work" -a "$2" -f "$PWD/edge/liveshop.vcl" -p "vcl_path=$dir:$PWD/edge" -s malloc,256m \
    -p thread_pools=2 -p "thread_pool_min=$((THREADS_MIN / 2))" -p thread_pool_max=2500 >"$dir/log" 2>&1 &
  pids+=($!)
}

target/release/origin --listen "$ORIGIN_LISTEN" "$@" &
pids+=($!)
if [ -n "${SHIELD:-}" ]; then
  varnish shield "$SHIELD_LISTEN" "$ORIGIN_LISTEN"
  varnish edge "$LISTEN" "$SHIELD_LISTEN"
  tiers="edge http://$LISTEN -> shield http://$SHIELD_LISTEN -> origin http://$ORIGIN_LISTEN"
else
  varnish edge "$LISTEN" "$ORIGIN_LISTEN"
  tiers="edge http://$LISTEN -> origin http://$ORIGIN_LISTEN"
fi
for _ in $(seq 100); do
  curl -sf "http://$LISTEN/clock" >/dev/null 2>&1 && break
  sleep 0.2
done
echo "liveshop through an edge cache: open http://$LISTEN/ ($tiers; origin load at http://$ORIGIN_LISTEN/stats; Ctrl-C stops)"
wait -n "${pids[@]}"
