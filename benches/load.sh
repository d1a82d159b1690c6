#!/usr/bin/env bash
# Serving under load: 64 concurrent clients read the output feeds while the daemon polls ~100
# local feeds. Everything runs on 127.0.0.1 and stops by itself.
#
#   bash benches/load.sh            # FEEDS=100 ITEMS=50 DURATION=20s CONNECTIONS=64 by default
#
# Builds the release binary (`cargo build --release --locked`, honouring CARGO_TARGET_DIR),
# generates FEEDS RSS files of ITEMS items each, serves them with python's http.server,
# starts `tradefeed run` with an every-minute schedule (so the first full polling pass starts
# with the load and the next one falls inside it), keeps rewriting a tenth of the feeds so each
# pass has new items to ingest, then runs `wrk --latency` on /feeds/trade-policy.atom and
# /feeds/all.json. Prints wrk's report and a summary line per endpoint (errors, non-2xx, p50,
# p99). Exits non-zero if any request failed.
set -euo pipefail

FEEDS=${FEEDS:-100}
ITEMS=${ITEMS:-50}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/tradefeed

for tool in wrk python3 curl; do
    command -v "$tool" >/dev/null || { echo "load.sh: $tool is required" >&2; exit 1; }
done

WORK=$(mktemp -d -t tradefeed-load.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        pkill -P "$pid" 2>/dev/null || true # the feed rewriter's sleep/python children
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

echo "== building release binary"
(cd "$ROOT" && cargo build --release --locked --quiet)

echo "== generating $FEEDS feeds of $ITEMS items in $WORK/www"
mkdir -p "$WORK/www"
cat >"$WORK/gen.py" <<'PY'
"""Writes feed{n}.xml files of generated trade-policy-ish and general news text."""
import random, sys, time
from email.utils import formatdate
from xml.sax.saxutils import escape

out, feeds, items, generation = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
only = set(range(feeds)) if len(sys.argv) < 6 else {int(x) for x in sys.argv[5].split(",")}
trade = ("tariff tariffs duties anti-dumping countervailing safeguard quota export controls "
         "sanctions WTO dispute panel trade agreement free-trade negotiations customs union "
         "steel aluminium semiconductors imports exports deficit retaliation commerce ministry").split()
general = ("league match season coach transfer striker election parliament weather storm "
           "festival film album concert hospital school budget housing rail airport court "
           "river museum festival market shares company profit quarter results").split()
names = "Brussels Washington Beijing Ottawa London Tokyo Delhi Brasilia Canberra Seoul".split()
now = time.time()
for f in only:
    rng = random.Random(f * 1_000_003 + generation)
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
             f'<title>Feed {f}</title><link>http://feed{f}.example/</link>'
             '<description>generated</description>\n']
    for i in range(items):
        words = trade if rng.random() < 0.4 else general
        title = f"{rng.choice(names)} " + " ".join(rng.choice(words) for _ in range(7))
        body = " ".join(rng.choice(words + names) for _ in range(120))
        stamp = formatdate(now - (i * 600 + f * 7), usegmt=True)
        guid = f"feed{f}-g{generation}-{i}"
        parts.append(f"<item><guid>{guid}</guid><link>http://feed{f}.example/{guid}</link>"
                     f"<title>{escape(title)}</title><description>{escape(body)}</description>"
                     f"<pubDate>{stamp}</pubDate></item>\n")
    parts.append("</channel></rss>\n")
    with open(f"{out}/feed{f}.xml.tmp", "w") as fh:
        fh.write("".join(parts))
    import os
    os.replace(f"{out}/feed{f}.xml.tmp", f"{out}/feed{f}.xml")
PY
python3 "$WORK/gen.py" "$WORK/www" "$FEEDS" "$ITEMS" 0

FEED_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "$FEED_PORT" \
    >"$WORK/feeds.log" 2>&1 &
PIDS+=($!)

PORT=$(free_port)
{
    printf '[server]\nlisten = "127.0.0.1:%s"\n\n[storage]\npath = "tradefeed.db"\n\n' "$PORT"
    printf '[defaults]\nschedule = "* * * * *"\nmax_jitter_secs = 0\nconcurrency = 16\n'
    printf 'per_host_concurrency = 16\ntimeout_secs = 20\n\n'
    for ((f = 0; f < FEEDS; f++)); do
        printf '[[sources]]\nname = "Feed %s"\nurl = "http://127.0.0.1:%s/feed%s.xml"\n\n' \
            "$f" "$FEED_PORT" "$f"
    done
} >"$WORK/tradefeed.toml"

for _ in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$FEED_PORT/feed0.xml" 2>/dev/null && break
    sleep 0.1
done

echo "== starting tradefeed on 127.0.0.1:$PORT"
RUST_LOG=warn "$BIN" --config "$WORK/tradefeed.toml" run >"$WORK/daemon.log" 2>&1 &
DAEMON=$!
PIDS+=("$DAEMON")
for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
    sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz"

# Keep the polling passes busy: every 3 s a tenth of the feeds gets a fresh set of items.
(
    generation=1
    while true; do
        sleep 3
        picks=$(python3 -c "import random; r = random.Random($generation); print(','.join(str(x) for x in r.sample(range($FEEDS), max(1, $FEEDS // 10))))")
        python3 "$WORK/gen.py" "$WORK/www" "$FEEDS" "$ITEMS" "$generation" "$picks"
        generation=$((generation + 1))
    done
) &
PIDS+=($!)

status=0
for path in /feeds/trade-policy.atom /feeds/all.json; do
    url="http://127.0.0.1:$PORT$path"
    echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $url"
    report=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s --latency "$url")
    echo "$report"
    requests=$(awk '/requests in/ {print $1}' <<<"$report")
    non2xx=$(awk '/Non-2xx or 3xx responses/ {print $NF}' <<<"$report")
    errors=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$report")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$report")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$report")
    echo "SUMMARY $path requests=$requests non2xx=${non2xx:-0} socket_errors=${errors:-0} p50=$p50 p99=$p99"
    if [[ ${non2xx:-0} != 0 || ${errors:-0} != 0 ]]; then
        status=1
    fi
done

echo "== after the load"
kill -0 "$DAEMON" || { echo "the daemon died" >&2; cat "$WORK/daemon.log" >&2; exit 1; }
"$BIN" --config "$WORK/tradefeed.toml" sources >"$WORK/sources.txt" || true
polled=$(grep -c ' ok \| not_modified ' "$WORK/sources.txt" || true)
echo "sources polled successfully: $polled of $FEEDS"
curl -fsS "http://127.0.0.1:$PORT/feeds/all.json?limit=500" |
    python3 -c 'import json, sys; print("stories served (limit 500):", len(json.load(sys.stdin)["items"]))'
echo "error lines in the daemon log: $(grep -ci 'error' "$WORK/daemon.log" || true)"
exit "$status"
