#!/usr/bin/env bash
# Acceptance run as a new user would do it (issue 2's "done means"): a release build, a config
# listing 20 real-text feeds on a local nginx, `tradefeed fetch` twice (the second pass all 304),
# `tradefeed run`, the three output formats parsed by independent clients (Python feedparser
# and newsboat), each story exactly once, ids stable across a restart, SIGTERM exit time.
#
#   benches/acceptance.sh          (TRADEFEED_BIN=path skips the build; FEEDS, ITEMS, KEEP=1)
#
# Loopback only; everything lives in a temp dir removed on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PY=/usr/bin/python3
FEEDS=${FEEDS:-20}
ITEMS=${ITEMS:-40}
DATA=${TRADEFEED_DATA:-$REPO/../shared/data}
CORPUS="$DATA/reuters21578/trade.jsonl.gz"

log() { printf '[acceptance %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

missing=()
[[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v newsboat >/dev/null || missing+=(newsboat)
command -v curl >/dev/null || missing+=(curl)
"$PY" -c 'import feedparser' 2>/dev/null || missing+=(python3-feedparser)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[[ -f $CORPUS ]] || die "corpus not found: $CORPUS (set TRADEFEED_DATA)"

if [[ -n ${TRADEFEED_BIN:-} ]]; then
    TF=$TRADEFEED_BIN
else
    log "cargo build --release --locked"
    (cd "$REPO" && cargo build --release --locked)
    target=${CARGO_TARGET_DIR:-target}
    [[ $target == /* ]] || target="$REPO/$target"
    TF="$target/release/tradefeed"
fi

RUN=$(mktemp -d "${TMPDIR:-/tmp}/tradefeed-acceptance.XXXXXX")
chmod 755 "$RUN"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ ${KEEP:-0} == 1 ]] && log "kept $RUN" || rm -rf "$RUN"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL: up to 30 s
    for _ in $(seq 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
    return 1
}

mkdir -p "$RUN/www" "$RUN/nginx-logs"
"$PY" "$HERE/farm/gen_farm.py" --data "$CORPUS" --out "$RUN/www" --feeds "$FEEDS" --items "$ITEMS" >"$RUN/gen.log"
NGX_PORT=$(free_port)
sed -e "s#@RUN@#$RUN#g; s#@ROOT@#$RUN/www#g; s#@PORT@#$NGX_PORT#g" "$HERE/farm/nginx.conf.in" >"$RUN/nginx.conf"
echo ok >"$RUN/www/ping"
/usr/sbin/nginx -e "$RUN/nginx-error.log" -p "$RUN/nginx-logs" -c "$RUN/nginx.conf" &
PIDS+=($!)
wait_http "http://127.0.0.1:$NGX_PORT/ping" || die "nginx did not start"

TF_PORT=$(free_port)
{
    printf '[server]\nlisten = "127.0.0.1:%s"\n\n[storage]\npath = "%s"\n\n' "$TF_PORT" "$RUN/tf.db"
    printf '[defaults]\nschedule = "*/30 * * * *"\nper_host_concurrency = 16\n\n'
    printf '[topics]\ndir = "%s"\n\n' "$REPO/config/topics"
    for f in $(cd "$RUN/www" && ls -- *.xml *.atom *.rdf 2>/dev/null | sort); do
        printf '[[sources]]\nname = "%s"\nurl = "http://127.0.0.1:%s/%s"\n\n' "$f" "$NGX_PORT" "$f"
    done
} >"$RUN/tf.toml"
sources=$(grep -c '^\[\[sources\]\]' "$RUN/tf.toml")
log "$sources feeds on nginx :$NGX_PORT"
"$TF" --config "$RUN/tf.toml" check

t0=$(date +%s.%N)
"$TF" --config "$RUN/tf.toml" fetch >"$RUN/fetch1.out" || die "first fetch: $(cat "$RUN/fetch1.out")"
t1=$(date +%s.%N)
"$TF" --config "$RUN/tf.toml" fetch >"$RUN/fetch2.out" || die "second fetch: $(cat "$RUN/fetch2.out")"
t2=$(date +%s.%N)
tail -1 "$RUN/fetch1.out"
tail -1 "$RUN/fetch2.out"
not_modified=$(grep -c ' not_modified ' "$RUN/fetch2.out" || true)
[[ $not_modified == "$sources" ]] || die "second pass: $not_modified of $sources answered 304"

"$TF" --config "$RUN/tf.toml" run 2>"$RUN/run1.log" &
TF_PID=$!
PIDS+=($TF_PID)
wait_http "http://127.0.0.1:$TF_PORT/readyz" || die "daemon did not become ready"
for topic in trade-policy all; do
    for ext in atom rss json; do
        curl -fs "http://127.0.0.1:$TF_PORT/feeds/$topic.$ext?limit=500" -o "$RUN/run1-$topic.$ext"
    done
done

# Independent client 1: Python feedparser must parse all three formats without error, each story
# exactly once, and the formats must agree on ids.
"$PY" - "$RUN" <<'PYEOF'
import sys, json, feedparser
run = sys.argv[1]
ids = {}
for topic in ("trade-policy", "all"):
    for ext in ("atom", "rss", "json"):
        path = f"{run}/run1-{topic}.{ext}"
        if ext == "json":
            doc = json.load(open(path))
            entries = [(i["id"], i["title"]) for i in doc["items"]]
            assert all("_tradefeed" in i and i["_tradefeed"]["appearances"] for i in doc["items"])
        else:
            d = feedparser.parse(path)
            assert not d.bozo, f"{path}: {d.bozo_exception!r}"
            entries = [(e.id, e.title) for e in d.entries]
        got = [i for i, _ in entries]
        assert len(got) == len(set(got)), f"{path}: a story listed twice"
        assert entries, f"{path}: empty"
        ids[(topic, ext)] = set(got)
        print(f"feedparser ok: {topic}.{ext}: {len(got)} stories")
    assert ids[(topic, "atom")] == ids[(topic, "rss")] == ids[(topic, "json")], f"{topic}: formats disagree"
PYEOF

# Independent client 2: newsboat reads the trade-policy feed.
printf 'http://127.0.0.1:%s/feeds/trade-policy.atom\n' "$TF_PORT" >"$RUN/newsboat-urls"
HOME="$RUN" newsboat -x reload -u "$RUN/newsboat-urls" -c "$RUN/newsboat.db" -C /dev/null >"$RUN/newsboat.out" 2>&1 ||
    die "newsboat: $(cat "$RUN/newsboat.out")"
nb_items=$("$PY" -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from rss_item').fetchone()[0])" "$RUN/newsboat.db")
log "newsboat read $nb_items items from the trade-policy feed"
[[ $nb_items -gt 0 ]] || die "newsboat read nothing"

# SIGTERM: exit 0 well within 10 s; then a restart serves the same ids.
ts=$(date +%s.%N)
kill -TERM "$TF_PID"
set +e; wait "$TF_PID"; rc=$?; set -e
te=$(date +%s.%N)
stop_secs=$("$PY" -c "print(round($te-$ts,2))")
[[ $rc == 0 ]] || die "exit status $rc after SIGTERM"
"$TF" --config "$RUN/tf.toml" run 2>"$RUN/run2.log" &
TF_PID=$!
PIDS+=($TF_PID)
wait_http "http://127.0.0.1:$TF_PORT/readyz" || die "daemon did not restart"
curl -fs "http://127.0.0.1:$TF_PORT/feeds/all.json?limit=500" -o "$RUN/run2-all.json"
"$PY" - "$RUN" <<'PYEOF'
import sys, json
run = sys.argv[1]
a = [i["id"] for i in json.load(open(f"{run}/run1-all.json"))["items"]]
b = [i["id"] for i in json.load(open(f"{run}/run2-all.json"))["items"]]
assert a == b, "ids changed across the restart"
print(f"ids stable across restart: {len(a)} stories")
PYEOF
kill -TERM "$TF_PID"; wait "$TF_PID" || true

items=$(tail -1 "$RUN/fetch1.out" | sed -E 's/.* ([0-9]+) items.*/\1/')
stories=$("$PY" -c "import json,sys; print(len(json.load(open(sys.argv[1]))['items']))" "$RUN/run1-all.json")
trade=$("$PY" -c "import json,sys; print(len(json.load(open(sys.argv[1]))['items']))" "$RUN/run1-trade-policy.json")
printf '\n| measure | value |\n|---|---|\n'
printf '| feeds | %s |\n' "$sources"
printf '| items in the feeds | %s |\n' "$items"
printf '| stories served (all, limit 500) | %s |\n' "$stories"
printf '| trade-policy stories | %s |\n' "$trade"
printf '| first fetch (cold) | %.2f s |\n' "$("$PY" -c "print($t1-$t0)")"
printf '| second fetch (warm) | %.2f s, %s/%s answered 304 |\n' "$("$PY" -c "print($t2-$t1)")" "$not_modified" "$sources"
printf '| SIGTERM to exit | %s s (exit 0) |\n' "$stop_secs"
printf '| newsboat items read | %s |\n' "$nb_items"
log "PASS"
