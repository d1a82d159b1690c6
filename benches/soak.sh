#!/usr/bin/env bash
# Soak benchmark: `tradefeed run` for a long while against ~60 changing loopback feeds, under
# read load and config churn, then a clean stop, a restart and the database's own checks.
# Prints a table of checks (measure, value, limit, PASS/FAIL) and exits non-zero if any fails.
#
#   benches/soak.sh                   # 10 minutes of soak (about 12 minutes in all)
#   SOAK_SECS=1800 benches/soak.sh    # the long run: 30 minutes
#   SOAK_SECS=120 benches/soak.sh     # smoke test of the script itself
#
# Environment: SOAK_SECS (600), CLIENTS (3 load threads), OUT_DIR (where every log, the
# database and soak-results.md are kept; default a new /tmp/soak-XXXXXX, never removed: the
# logs are the evidence), TRADEFEED_BIN (skip the build and use this binary), TRADEFEED_DATA
# (corpus folder, default ../shared/data), CARGO_TARGET_DIR.
#
# Needs python3 (standard library only), curl, sqlite3 and cargo (or TRADEFEED_BIN). Everything
# listens on 127.0.0.1 on ports the kernel picks. See "The soak" in README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SOAK="$HERE/soak"
PY=python3
SOAK_SECS=${SOAK_SECS:-600}
CLIENTS=${CLIENTS:-3}
DATA=${TRADEFEED_DATA:-$REPO/../shared/data}
CORPUS="$DATA/reuters21578/trade.jsonl.gz"

log() { printf '[soak %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

for tool in "$PY" curl sqlite3; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
[[ -f $CORPUS ]] || die "corpus not found: $CORPUS (set TRADEFEED_DATA to the shared data folder)"

if [[ -n ${TRADEFEED_BIN:-} ]]; then
    TF=$TRADEFEED_BIN
else
    log "building tradefeed (cargo build --release --locked)"
    (cd "$REPO" && cargo build --release --locked)
    target=${CARGO_TARGET_DIR:-target}
    [[ $target == /* ]] || target="$REPO/$target"
    TF="$target/release/tradefeed"
fi
[[ -x $TF ]] || die "no tradefeed binary at $TF"

# --- Run folder and processes ----------------------------------------------------------------
# The run folder is kept: its logs are what the checks were derived from.
RUN=${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/soak-XXXXXX")}
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)
[[ -e $RUN/tradefeed.db ]] && die "$RUN already holds a soak; give OUT_DIR an empty folder"
FACTS="$RUN/facts.env" # numbers the shell measures (stop and restart times), for report.py
: >"$FACTS"
fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }
now() { date +%s.%N; }

FARM_PID="" TF_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # Only the processes this script started, by their pids.
    if [[ -n $TF_PID ]]; then kill "$TF_PID" 2>/dev/null || true; wait "$TF_PID" 2>/dev/null || true; fi
    if [[ -n $FARM_PID ]]; then kill "$FARM_PID" 2>/dev/null || true; wait "$FARM_PID" 2>/dev/null || true; fi
    log "logs, database and results in $RUN"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_ready URL PID: seconds (with fraction) until URL answers 200, or fail if PID dies or
# 60 s pass.
wait_ready() {
    local t0 i
    t0=$(now)
    for ((i = 0; i < 600; i++)); do
        if curl -sf -o /dev/null "$1"; then
            awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
            return 0
        fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
start_daemon() { # LOG: starts `tradefeed run` in the background, sets TF_PID
    # JSON logs: report.py reads the reload results and their times from them.
    "$TF" --config "$RUN/tradefeed.toml" --log-format json run 2>>"$1" &
    TF_PID=$!
}
# stop_daemon KEY: SIGTERM, then records KEY_exit and KEY_secs (time to exit).
stop_daemon() {
    local t0 rc=0
    t0=$(now)
    kill -TERM "$TF_PID"
    wait "$TF_PID" || rc=$?
    fact "${1}_exit" "$rc"
    fact "${1}_secs" "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')"
    TF_PID=""
}

# --- 1. The feed farm ---------------------------------------------------------------------------
log "starting the feed farm"
"$PY" "$SOAK/farm.py" --data "$CORPUS" --manifest "$RUN/manifest.json" --log "$RUN/requests.jsonl" \
    2>"$RUN/farm.err" &
FARM_PID=$!
for ((i = 0; i < 300; i++)); do
    [[ -f $RUN/manifest.json ]] && break
    kill -0 "$FARM_PID" 2>/dev/null || die "the farm did not start: $(cat "$RUN/farm.err")"
    sleep 0.1
done
[[ -f $RUN/manifest.json ]] || die "the farm wrote no manifest within 30 s"

# --- 2. Config, a first pass, an aged database ----------------------------------------------------
TF_PORT=$(free_port)
BASE="http://127.0.0.1:$TF_PORT"
"$PY" "$SOAK/drive.py" config --manifest "$RUN/manifest.json" --run "$RUN" \
    --listen "127.0.0.1:$TF_PORT" --topics "$REPO/config/topics"
"$TF" --config "$RUN/tradefeed.toml" check >"$RUN/check.out" 2>&1 ||
    die "tradefeed rejected the generated config: $(cat "$RUN/check.out")"

# One `fetch` pass fills the database, then a third of its entries are made two days old, as if
# the daemon had been running since: the daemon's start-up prune (retention_days = 1) then
# deletes them, and the feeds that still list those items must not bring them back (tombstones).
# Retention only prunes entries first seen more than a day ago; a soak of minutes has no others.
log "first polling pass (tradefeed fetch)"
fetch_rc=0
"$TF" --config "$RUN/tradefeed.toml" fetch >"$RUN/fetch.out" 2>"$RUN/fetch.err" || fetch_rc=$?
# Exit status 2 is expected: the farm has failing feeds by design.
[[ $fetch_rc == 2 ]] || die "tradefeed fetch exited $fetch_rc (expected 2): $(tail -5 "$RUN/fetch.err")"
tail -n 1 "$RUN/fetch.out" >&2
sqlite3 "$RUN/tradefeed.db" "UPDATE entries SET first_seen = first_seen - 2 * 86400 WHERE id % 3 = 0;
    SELECT 'aged ' || changes() || ' entries by two days';" >&2
fact aged_entries "$(sqlite3 "$RUN/tradefeed.db" "SELECT count(*) FROM entries WHERE first_seen < strftime('%s','now') - 86400")"

# --- 3. The daemon under load and churn ------------------------------------------------------------
start_daemon "$RUN/daemon.log"
fact daemon_start "$(now)"
ready=$(wait_ready "$BASE/readyz" "$TF_PID") || die "the daemon did not become ready: $(tail -5 "$RUN/daemon.log")"
log "tradefeed run (pid $TF_PID) ready in ${ready}s at $BASE; soaking for ${SOAK_SECS}s"
"$PY" "$SOAK/drive.py" drive --run "$RUN" --base "$BASE" --pid "$TF_PID" --secs "$SOAK_SECS" \
    --clients "$CLIENTS"
fact soak_end "$(now)"

# --- 4. Stop, restart, database checks ------------------------------------------------------------
log "SIGTERM"
stop_daemon stop
start_daemon "$RUN/daemon-restart.log"
fact restart_pid "$TF_PID"
restart_secs=$(wait_ready "$BASE/feeds/all.json?limit=500" "$TF_PID") || die "no restart: $(tail -5 "$RUN/daemon-restart.log")"
fact restart_secs "$restart_secs"
curl -sf "$BASE/feeds/all.json?limit=500" -o "$RUN/after-restart.json"
stop_daemon restart_stop
kill "$FARM_PID" && wait "$FARM_PID" 2>/dev/null || true
FARM_PID=""

fact integrity "$(sqlite3 "$RUN/tradefeed.db" 'PRAGMA integrity_check' | tr '\n' ' ')"
fact foreign_key_problems "$(sqlite3 "$RUN/tradefeed.db" 'PRAGMA foreign_key_check' | wc -l)"

# --- 5. The checks --------------------------------------------------------------------------------
"$PY" "$SOAK/report.py" --run "$RUN"
