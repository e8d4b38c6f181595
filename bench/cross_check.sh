#!/usr/bin/env bash
# Cross-check Sluice with the independent C instruments in ../shared/bench (developer tool, not CI).
#
#   bench/cross_check.sh build                  build sseload/ssepub/limits into $SSELOAD_DIR
#   bench/cross_check.sh url SUB_URL PUB_URL    run the matrix against a server that is already running
#                                               (set SERVER_PID to also get RSS per idle connection)
#   bench/cross_check.sh sluice                 start Sluice (main.ts) pinned to SERVER_CPU, run, stop
#   bench/cross_check.sh baseline               same with bench/baseline_deno_serve.ts
#   bench/cross_check.sh peers [NAME...]        reference peers via ../shared/bench/peers/peer.sh
#                                               (default: c-ref-batch deno-serve nchan1), one after another
#   bench/cross_check.sh clients SUB PUB [N..]  the Deno load tools against the C ones on one server:
#                                               alternates sseload / load_subscriber.ts (C publisher), and
#                                               ssepub / load_publisher.ts (C subscriber), REPS times;
#                                               ENGINE (epoll|deno) picks load_subscriber's engine;
#                                               SUB_ARGS overrides its lazy-read period
#
# Method (../shared/bench/README.md): server on SERVER_CPU (0), load on LOAD_CPU (1), 100-byte events,
# fan-out with `ssepub -k 4 --follow --window 64`, latency with 1000 clients x 50 ev/s open loop,
# connects/s and RSS per idle connection with 10 000 connections (512 handshakes in flight).
# Output: the tools' JSON lines (label = measure), then one summary line per run.
#
# Env: CLIENTS ("100 1000 5000") DURATION (5) WARMUP (1) REPS (1; clients: 3) WINDOW (64)
#      IDLE (10000) LAT_CLIENTS (1000) LAT_RATE (50) READ_DELAY_US (0: sseload --read-delay-us)
#      MEASURES ("fanout latency idle") SERVER_CPU (0) LOAD_CPU (1) SSELOAD_DIR (/tmp/sluice-sseload)
#      SHARED_BENCH (../shared/bench) PORT (18180, for sluice/baseline)
#      SLUICE_BENCH_V8 (Sluice's V8 flags; default: those of `deno task start`, "" for none)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
BIN=${SSELOAD_DIR:-/tmp/sluice-sseload}
CLIENTS=${CLIENTS:-"100 1000 5000"}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
WINDOW=${WINDOW:-64}
IDLE=${IDLE:-10000}
LAT_CLIENTS=${LAT_CLIENTS:-1000}
LAT_RATE=${LAT_RATE:-50}
READ_DELAY_US=${READ_DELAY_US:-0}
MEASURES=${MEASURES:-"fanout latency idle"}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${PORT:-18180}
ENGINE=${ENGINE:-epoll}
DENO_BIN=$(command -v deno)
TMP=$(mktemp -d /tmp/sluice-xcheck.XXXXXX)

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

PIDS=()        # background processes we started (killed by PID on exit)
PEERS_UP=()    # peers started through peer.sh
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; done
  for p in "${PEERS_UP[@]:-}"; do [ -n "$p" ] && SERVER_CPU=$SERVER_CPU "$SHARED/peers/peer.sh" stop "$p" || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load() { taskset -c "$LOAD_CPU" "$@"; }

build() {
  mkdir -p "$BIN"
  local need=0 f
  for f in sseload.c ssepub.c limits.c common.h; do
    if [ ! -f "$BIN/$f" ] || ! cmp -s "$SHARED/sseload/$f" "$BIN/$f"; then need=1; fi
  done
  if [ $need = 1 ] || [ ! -x "$BIN/sseload" ] || [ ! -x "$BIN/ssepub" ]; then
    # ../shared is read-only: build from a copy.
    cp "$SHARED"/sseload/*.c "$SHARED"/sseload/*.h "$SHARED"/sseload/build.sh "$BIN/"
    chmod u+w "$BIN"/*
    sh "$BIN/build.sh" >&2
  fi
}

wait_port() { # port pid
  local i
  for i in $(seq 1 150); do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ssepub maps the page as soon as the file exists: a 0-byte file (sseload between open and
# ftruncate) would crash it with SIGBUS, so wait until the page has its size.
wait_shm() { # file pid
  local i
  for i in $(seq 1 600); do
    [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge 4096 ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

rss_kb() { local v; v=$(awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null); echo "${v:-0}"; }

# Sum VmRSS over a server and its children (nginx workers).
rss_tree_kb() {
  local total=0 p
  for p in "$@"; do total=$((total + $(rss_kb "$p"))); done
  echo "$total"
}

fanout() { # label sub pub clients
  local label=$1 sub=$2 pub=$3 c=$4 shm=$TMP/$1.shm
  rm -f "$shm"
  load "$BIN/sseload" -q -c "$c" -w "$WARMUP" -d "$DURATION" --stats-shm "$shm" --label "$label" \
    --read-delay-us "$READ_DELAY_US" "$sub" >"$TMP/sub.json" &
  local sp=$!
  PIDS+=("$sp")
  wait_shm "$shm" "$sp" || true
  load "$BIN/ssepub" -q -k 4 -d $((WARMUP + DURATION + 3)) --follow "$shm" --window "$WINDOW" \
    --wait-ready --max-wait 60 --label "$label" "$pub" >"$TMP/pub.json" || true
  wait "$sp" || true
  cat "$TMP/sub.json" "$TMP/pub.json"
  jq -r -s '"SUMMARY \(.[0].label): \(.[0].events_per_s|floor) ev/s, established \(.[0].established), " +
    "sseload cpu \(.[0].window_cpu_pct)%, publisher \(.[1].achieved_rate)/s resp p99 \(.[1].resp_p99_us) us"' \
    "$TMP/sub.json" "$TMP/pub.json" || true
}

latency() { # label sub pub
  local label=$1 sub=$2 pub=$3
  load "$BIN/sseload" -q -c "$LAT_CLIENTS" -w "$WARMUP" -d "$DURATION" --label "$label" "$sub" >"$TMP/sub.json" &
  local sp=$!
  PIDS+=("$sp")
  sleep 1 # connect phase of 1000 connections
  load "$BIN/ssepub" -q -k 4 -r "$LAT_RATE" -d $((WARMUP + DURATION + 1)) --label "$label" "$pub" >"$TMP/pub.json" || true
  wait "$sp" || true
  cat "$TMP/sub.json" "$TMP/pub.json"
  jq -r -s '"SUMMARY \(.[0].label): p50 \(.[0].lat_p50_us) us, p99 \(.[0].lat_p99_us) us, samples \(.[0].lat_samples), cpu \(.[0].window_cpu_pct)%"' \
    "$TMP/sub.json" "$TMP/pub.json" || true
}

idle() { # label sub pids...
  local label=$1 sub=$2 ready=$TMP/$1.ready
  shift 2
  local before=0 after=0 i
  [ $# -gt 0 ] && before=$(rss_tree_kb "$@")
  rm -f "$ready"
  load "$BIN/sseload" -q -c "$IDLE" -P 512 -w 2.5 -d 0.2 --ready-file "$ready" --label "$label" "$sub" \
    >"$TMP/sub.json" &
  local sp=$!
  PIDS+=("$sp")
  # RSS 1.5 s after the connect phase (as bench/run.ts does), while the connections are held
  for i in $(seq 1 600); do
    [ -f "$ready" ] && break
    kill -0 "$sp" 2>/dev/null || break
    sleep 0.1
  done
  sleep 1.5
  [ $# -gt 0 ] && after=$(rss_tree_kb "$@")
  wait "$sp" || true
  cat "$TMP/sub.json"
  jq -r --argjson b "$before" --argjson a "$after" \
    '"SUMMARY \(.label): \(.connect_rate_per_s|floor) connects/s, established \(.established)" +
     (if $b > 0 then ", RSS +\(($a - $b) / 1024 | floor) MiB = \((($a - $b) * 1024 / .established)|floor) B/conn" else "" end)' \
    "$TMP/sub.json" || true
}

matrix() { # name sub pub [server pids...]
  local name=$1 sub=$2 pub=$3
  shift 3
  local m c r
  for r in $(seq 1 "${REPS:-1}"); do
    for m in $MEASURES; do
      case $m in
        fanout) for c in $CLIENTS; do fanout "$name-fanout-$c-r$r" "$sub" "$pub" "$c"; done ;;
        latency) latency "$name-latency-r$r" "$sub" "$pub" ;;
        idle) idle "$name-idle-r$r" "$sub" "$@" ;;
      esac
    done
  done
}

start_own() { # name script args...
  local name=$1
  shift
  DENO_NO_UPDATE_CHECK=1 taskset -c "$SERVER_CPU" "$DENO_BIN" run -A "$@" >"$TMP/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  if ! wait_port "$PORT" "$pid"; then
    echo "$name did not start; log:" >&2
    tail -20 "$TMP/$name.log" >&2
    exit 1
  fi
  SERVER_PID=$pid
}

stop_pid() { kill -TERM "$1" 2>/dev/null || true; sleep 0.3; kill -KILL "$1" 2>/dev/null || true; }

# Same lazy-read period as bench/run.ts --read-delay-ms auto.
auto_delay() { # clients
  if [ "$ENGINE" = epoll ]; then echo 1; return; fi
  local d=$(($1 / 100))
  [ "$1" -lt 2000 ] && d=0
  [ $d -gt 50 ] && d=50
  echo $d
}

clients() { # sub pub [clients...]
  local sub=$1 pub=$2 shm c r
  shift 2
  local list=${*:-$CLIENTS}
  for c in $list; do
    for r in $(seq 1 "${REPS:-3}"); do
      # subscriber side: C sseload vs Deno load_subscriber, both fed by the C publisher
      fanout "clients-sseload-$c-r$r" "$sub" "$pub" "$c"
      shm=$TMP/d.shm
      rm -f "$shm"
      local sargs=${SUB_ARGS:-"--read-delay-ms $(auto_delay "$c")"}
      # shellcheck disable=SC2086 # sargs: several words
      load "$DENO_BIN" run -A "$HERE/load_subscriber.ts" -q -c "$c" -w "$WARMUP" -d "$DURATION" \
        --engine "$ENGINE" --stats-shm "$shm" --label "clients-deno-sub-$c-r$r" $sargs "$sub" >"$TMP/sub.json" &
      local sp=$!
      PIDS+=("$sp")
      wait_shm "$shm" "$sp" || true
      load "$BIN/ssepub" -q -k 4 -d $((WARMUP + DURATION + 3)) --follow "$shm" --window "$WINDOW" \
        --wait-ready --max-wait 60 "$pub" >"$TMP/pub.json" || true
      wait "$sp" || true
      cat "$TMP/sub.json" "$TMP/pub.json"
      jq -r -s '"SUMMARY \(.[0].label): \(.[0].events_per_s|floor) ev/s, established \(.[0].established), " +
        "load_subscriber cpu \(.[0].window_cpu_pct)%, reads \(.[0].reads), publisher \(.[1].achieved_rate)/s"' \
        "$TMP/sub.json" "$TMP/pub.json" || true
      # publisher side: C sseload fed by the Deno load_publisher
      shm=$TMP/p.shm
      rm -f "$shm"
      load "$BIN/sseload" -q -c "$c" -w "$WARMUP" -d "$DURATION" --stats-shm "$shm" \
        --label "clients-deno-pub-$c-r$r" "$sub" >"$TMP/sub.json" &
      sp=$!
      PIDS+=("$sp")
      wait_shm "$shm" "$sp" || true
      load "$DENO_BIN" run -A "$HERE/load_publisher.ts" -k 4 -d $((WARMUP + DURATION + 3)) --follow "$shm" \
        --window "$WINDOW" --wait-ready "$pub" >"$TMP/pub.json" || true
      wait "$sp" || true
      cat "$TMP/sub.json" "$TMP/pub.json"
      jq -r -s '"SUMMARY \(.[0].label): \(.[0].events_per_s|floor) ev/s, sseload cpu \(.[0].window_cpu_pct)%, " +
        "load_publisher \(.[1].achieved_rate)/s cpu \(.[1].cpu_pct)%"' "$TMP/sub.json" "$TMP/pub.json" || true
    done
  done
  # latency (LAT_CLIENTS x LAT_RATE, open loop, C publisher): C sseload vs load_subscriber
  for r in $(seq 1 "${REPS:-3}"); do
    latency "clients-sseload-latency-r$r" "$sub" "$pub"
    load "$DENO_BIN" run -A "$HERE/load_subscriber.ts" -q --engine "$ENGINE" -c "$LAT_CLIENTS" -w "$WARMUP" \
      -d "$DURATION" --label "clients-deno-latency-r$r" "$sub" >"$TMP/sub.json" &
    local lp=$!
    PIDS+=("$lp")
    sleep 1
    load "$BIN/ssepub" -q -k 4 -r "$LAT_RATE" -d $((WARMUP + DURATION + 1)) "$pub" >/dev/null || true
    wait "$lp" || true
    cat "$TMP/sub.json"
    jq -r '"SUMMARY \(.label): p50 \(.lat_p50_us) us, p99 \(.lat_p99_us) us, samples \(.lat_samples), cpu \(.window_cpu_pct)%"' \
      "$TMP/sub.json" || true
  done
  # connect phase: C sseload vs load_subscriber --mode idle (IDLE connections, 512 handshakes in flight)
  for r in $(seq 1 "${REPS:-3}"); do
    load "$BIN/sseload" -q -c "$IDLE" -P 512 -d 0.2 --label "clients-sseload-idle-r$r" "$sub" >"$TMP/sub.json" || true
    jq -r '"SUMMARY \(.label): \(.connect_rate_per_s|floor) connects/s, established \(.established), cpu \(.cpu_user_s + .cpu_sys_s) s"' "$TMP/sub.json" || true
    load "$DENO_BIN" run -A "$HERE/load_subscriber.ts" -q --engine "$ENGINE" --mode idle -c "$IDLE" -P 512 -d 0.2 \
      --label "clients-deno-idle-r$r" "$sub" >"$TMP/sub.json" || true
    jq -r '"SUMMARY \(.label): \(.connect_rate_per_s|floor) connects/s, established \(.established), cpu \(.cpu_user_s + .cpu_sys_s) s"' "$TMP/sub.json" || true
  done
}

cmd=${1:-}
shift || true
case "$cmd" in
  build) build ;;
  url)
    [ $# -ge 2 ] || { echo "usage: $0 url SUB_URL PUB_URL" >&2; exit 2; }
    build
    matrix url "$1" "$2" ${SERVER_PID:-}
    ;;
  sluice | baseline)
    build
    if [ "$cmd" = sluice ]; then
      # The V8 flags of `deno task start` (as users run it), as bench/run.ts does.
      v8=${SLUICE_BENCH_V8-$(grep -o -- '--v8-flags=[^ "]*' "$ROOT/deno.json" | head -1 | cut -d= -f2-)}
      start_own sluice ${v8:+--v8-flags=$v8} "$ROOT/main.ts" --port "$PORT" --hostname 127.0.0.1 --max-clients 20000 --queue-size 65536
    else
      start_own baseline "$HERE/baseline_deno_serve.ts" --port "$PORT"
    fi
    u="http://127.0.0.1:$PORT/events/bench"
    matrix "$cmd" "$u" "$u" "$SERVER_PID"
    stop_pid "$SERVER_PID"
    ;;
  peers)
    build
    names=${*:-"c-ref-batch deno-serve nchan1"}
    for name in $names; do
      SERVER_CPU=$SERVER_CPU DENO=$DENO_BIN "$SHARED/peers/peer.sh" start "$name" >/dev/null
      PEERS_UP+=("$name")
      read -r sub pub < <("$SHARED/peers/peer.sh" url "$name")
      mapfile -t ppids < <("$SHARED/peers/peer.sh" pids "$name")
      matrix "$name" "$sub" "$pub" "${ppids[@]}"
      SERVER_CPU=$SERVER_CPU "$SHARED/peers/peer.sh" stop "$name"
      unset 'PEERS_UP[${#PEERS_UP[@]}-1]'
    done
    ;;
  clients)
    [ $# -ge 2 ] || { echo "usage: $0 clients SUB_URL PUB_URL [N...]" >&2; exit 2; }
    build
    clients "$@"
    ;;
  *)
    sed -n '2,22p' "$0"
    exit 2
    ;;
esac
