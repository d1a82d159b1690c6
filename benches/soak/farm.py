#!/usr/bin/env python3
"""A changing feed farm on loopback for the soak benchmark (benches/soak.sh).

Several "publishers", each a ThreadingHTTPServer on its own 127.0.0.1 port (tradefeed limits
requests per host *and port*, so each publisher gets its own gate, as real outlets would).
Every feed's content is a pure function of the clock, so the farm needs no state to change
over time and two requests in the same second get identical bytes (which conditional GET
relies on):

  * each feed publishes a new item every 60-240 s (its own period) and lists its latest 20,
    so old items drop off; some items are edited a while after they appear (new title, an
    added paragraph, a later `updated` date);
  * a "wire" story every 40 s is carried by 2-3 healthy feeds: even-numbered ones with the
    same guid and the same link (plus per-outlet utm_* tracking), odd ones with each outlet's
    own guid and link but the same text, so tradefeed must fold both kinds into one story;
  * some feeds also list two items dated three days back, older than the soak's 1-day
    retention, which tradefeed must not take in.

Feed behaviours (the `kind` of each feed in the manifest):
  etag      ETag + If-None-Match (304)          lastmod   Last-Modified + If-Modified-Since
  plain     neither validator                   gzip      gzip-encoded body, with an ETag
  r301/r302 a redirect to the feed's real path  (the target behaves like `etag`)
  e500, e503, e404, e410       that status, always
  r429      429 with `Retry-After: 300` (seconds)
  r503date  503 with `Retry-After` as an HTTP date 240 s ahead
  hang      sleeps 25 s before answering (longer than the soak's 10 s fetch timeout)
  garbage   200 with bytes that are no feed at all

Text comes from Reuters-21578 (trade.jsonl.gz), read in place like benches/farm/gen_farm.py;
nothing from the corpus is written anywhere but into HTTP responses.

Every request is logged as one JSON line (time, port, path, status, bytes, the conditional
headers sent) to --log: report.py derives the politeness checks from it.

Usage: farm.py --data trade.jsonl.gz --manifest OUT.json --log requests.jsonl
Writes the manifest (publishers, feeds with url/kind/role) once every server listens, then
serves until killed. Standard library only.
"""

import argparse
import email.utils
import gzip
import hashlib
import http.server
import json
import os
import sys
import threading
import time
from xml.sax.saxutils import escape

# The feed farm's corpus reader, one folder over.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "farm"))
import gen_farm  # noqa: E402

FEED_LEN = 20  # items a feed lists; older ones drop off
WIRE_PERIOD = 40  # seconds between two wire stories
ANCIENT_SECS = 3 * 86400  # items this old are beyond the 1-day retention
HANG_SECS = 25
RETRY_AFTER_429 = 300
RETRY_AFTER_503_DATE = 240

# How many feeds of each kind, and the role they play in the soak:
#   stable  in the config all run long, never touched by the config editor: politeness checks
#   churn   in the config at start; the editor renames them, changes schedules/URLs, removes them
#   pool    not in the config at start; the editor adds them (and points URLs at them)
#   failing in the config all run long; checked for backoff, Retry-After and 410
LAYOUT = [
    ("etag", "stable", 12),
    ("lastmod", "stable", 10),
    ("plain", "stable", 8),
    ("gzip", "stable", 6),
    ("r301", "stable", 2),
    ("r302", "stable", 2),
    ("etag", "churn", 6),
    ("etag", "pool", 6),
    ("e500", "failing", 1),
    ("e503", "failing", 1),
    ("r429", "failing", 1),
    ("r503date", "failing", 1),
    ("e404", "failing", 1),
    ("e410", "failing", 1),
    ("hang", "failing", 1),
    ("garbage", "failing", 1),
]
HEALTHY_PUBLISHERS = 5  # healthy feeds spread over these; failing ones share one more


def stable_hash(*parts):
    """A hash that is the same in every process (Python's hash() of str is salted)."""
    digest = hashlib.sha1("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def load_docs(path):
    """Articles with a headline and some body, as (title, [paragraph, ...]): the feed farm's
    reading of the corpus (benches/farm/gen_farm.py), at most six paragraphs each."""
    return [(title, paras[:6]) for title, paras in gen_farm.load_docs(path)]


class Farm:
    """The feeds and their content as a function of time."""

    def __init__(self, docs, epoch):
        self.docs = docs
        self.epoch = epoch  # content times are counted from here
        self.feeds = []  # dicts: id, kind, role, format, period, phase, publisher, path, ...
        n = 0
        for kind, role, count in LAYOUT:
            for _ in range(count):
                failing = role == "failing"
                feed = {
                    "id": n,
                    "kind": kind,
                    "role": role,
                    "format": "atom" if n % 2 else "rss2",
                    "period": 60 + (n * 37) % 181,  # 60-240 s between new items
                    "phase": (n * 13) % 60,
                    "publisher": HEALTHY_PUBLISHERS if failing else n % HEALTHY_PUBLISHERS,
                    "ancient": n % 7 == 0,
                }
                feed["path"] = f"/p{feed['publisher']}/{kind}-{n:02d}.xml"
                if kind in ("r301", "r302"):
                    feed["target"] = f"/p{feed['publisher']}/moved-{n:02d}.xml"
                n += 1
                self.feeds.append(feed)
        self.by_path = {f["path"]: f for f in self.feeds}
        self.by_path.update({f["target"]: f for f in self.feeds if "target" in f})
        # Wire stories go to healthy feeds that are polled for the whole run.
        self.wire_feeds = [f["id"] for f in self.feeds if f["role"] in ("stable", "churn", "pool")]

    # --- content ---------------------------------------------------------------------------
    def doc(self, *key):
        return self.docs[stable_hash(*key) % len(self.docs)]

    def wire_carriers(self, w):
        """The 2-3 feeds that carry wire story w."""
        h = stable_hash("wire", w)
        count = 2 + h % 2
        ids = self.wire_feeds
        return {ids[(h >> (8 * i)) % len(ids)] for i in range(count)}

    def items(self, feed, now):
        """The items feed lists at `now`, newest first."""
        fid, period, phase = feed["id"], feed["period"], feed["phase"]
        latest = int((now - self.epoch - phase) // period)
        items = []
        for k in range(latest - FEED_LEN + 1, latest + 1):
            t = self.epoch + phase + k * period
            title, paras = self.doc("own", fid, k)
            item = {
                "guid": f"urn:soak:f{fid}:item{k}",
                "link": f"http://outlet{fid}.example/news/{k}",
                "title": title,
                "paras": list(paras),
                "published": t,
                "updated": t,
            }
            # One item in five is edited one and a half periods after it appeared.
            edit_at = t + period * 1.5
            if stable_hash("edit", fid, k) % 5 == 0 and now >= edit_at:
                item["title"] = "UPDATE 1-" + title
                item["paras"].append("This story has been updated with more detail.")
                item["updated"] = edit_at
            items.append(item)
        oldest = items[0]["published"]
        # Wire stories since the oldest listed own item that this feed carries.
        first_w = int((oldest - self.epoch) // WIRE_PERIOD) + 1
        last_w = int((now - self.epoch) // WIRE_PERIOD)
        for w in range(first_w, last_w + 1):
            if fid not in self.wire_carriers(w):
                continue
            t = self.epoch + w * WIRE_PERIOD
            title, paras = self.doc("wire", w)
            if w % 2 == 0:  # same guid and link in every carrier (utm_* differ)
                guid = f"urn:soak:wire:{w}"
                link = f"http://wire.example/story/wire-{w}?utm_source=outlet{fid}&utm_medium=rss"
            else:  # each outlet's own guid and link, the same text
                guid = f"urn:soak:f{fid}:wire{w}"
                link = f"http://outlet{fid}.example/wire/wire-{w}"
            items.append(
                {"guid": guid, "link": link, "title": title, "paras": list(paras),
                 "published": t, "updated": t}
            )
        if feed["ancient"]:  # beyond the retention: must never become entries
            for i in range(2):
                title, paras = self.doc("ancient", fid, i)
                t = self.epoch - ANCIENT_SECS - i * 3600
                items.append(
                    {"guid": f"urn:soak:f{fid}:ancient{i}", "link": f"http://outlet{fid}.example/old/{i}",
                     "title": title, "paras": list(paras), "published": t, "updated": t}
                )
        items.sort(key=lambda i: i["published"], reverse=True)
        return items

    def render(self, feed, now):
        """(body bytes, last change time) of feed at `now`."""
        items = self.items(feed, now)
        changed = max(i["updated"] for i in items if i["published"] <= now)
        fid = feed["id"]
        out = []
        if feed["format"] == "atom":
            out.append('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">')
            out.append(f"<title>Outlet {fid}</title><id>urn:soak:feed:{fid}</id>")
            out.append(f'<link href="http://outlet{fid}.example/"/><updated>{iso(changed)}</updated>')
            for i in items:
                html = "".join(f"<p>{escape(p)}</p>" for p in i["paras"])
                out.append(
                    f"<entry><title>{escape(i['title'])}</title><id>{escape(i['guid'])}</id>"
                    f'<link href="{escape(i["link"])}"/><published>{iso(i["published"])}</published>'
                    f"<updated>{iso(i['updated'])}</updated><author><name>Outlet {fid} staff</name></author>"
                    f'<content type="html">{escape(html)}</content></entry>'
                )
            out.append("</feed>\n")
        else:
            out.append('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>')
            out.append(f"<title>Outlet {fid}</title><link>http://outlet{fid}.example/</link>")
            out.append(f"<description>News from outlet {fid}</description>")
            out.append(f"<lastBuildDate>{email.utils.formatdate(changed, usegmt=True)}</lastBuildDate>")
            for i in items:
                html = "".join(f"<p>{escape(p)}</p>" for p in i["paras"])
                out.append(
                    f"<item><title>{escape(i['title'])}</title>"
                    f'<guid isPermaLink="false">{escape(i["guid"])}</guid><link>{escape(i["link"])}</link>'
                    f"<pubDate>{email.utils.formatdate(i['published'], usegmt=True)}</pubDate>"
                    f"<description>{escape(html)}</description></item>"
                )
            out.append("</channel></rss>\n")
        return "\n".join(out).encode(), changed


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class RequestLog:
    """One JSON line per request; a lock keeps lines whole across server threads."""

    def __init__(self, path):
        self.file = open(path, "a", buffering=1, encoding="utf-8")
        self.lock = threading.Lock()

    def write(self, record):
        line = json.dumps(record, separators=(",", ":"))
        with self.lock:
            self.file.write(line + "\n")


def make_handler(farm, log, port_of):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

        def log_message(self, *args):  # our own JSON log replaces the default stderr one
            pass

        def do_GET(self):
            start = time.time()
            status, body, headers = self.answer(start)
            sent = 0
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                sent = len(body)
            except (BrokenPipeError, ConnectionResetError):
                status = -status  # the client had gone (the hang feed after a timeout)
            log.write({
                "t": round(start, 3), "end": round(time.time(), 3), "port": port_of(self),
                "path": self.path, "status": status, "bytes": sent,
                "inm": self.headers.get("If-None-Match"), "ims": self.headers.get("If-Modified-Since"),
                "ae": self.headers.get("Accept-Encoding"),
                # The validators this answer gave, so the report can tell a stale one sent back.
                "etag": headers.get("ETag"), "lm": headers.get("Last-Modified"),
            })

        def answer(self, now):
            path = self.path.split("?")[0]
            feed = farm.by_path.get(path)
            if feed is None:
                return 404, b"not found\n", {"Content-Type": "text/plain"}
            kind = feed["kind"]
            text = {"Content-Type": "text/plain"}
            if kind == "e500":
                return 500, b"internal error\n", text
            if kind == "e503":
                return 503, b"unavailable\n", text
            if kind == "e404":
                return 404, b"not found\n", text
            if kind == "e410":
                return 410, b"gone\n", text
            if kind == "r429":
                return 429, b"slow down\n", dict(text, **{"Retry-After": str(RETRY_AFTER_429)})
            if kind == "r503date":
                when = email.utils.formatdate(now + RETRY_AFTER_503_DATE, usegmt=True)
                return 503, b"maintenance\n", dict(text, **{"Retry-After": when})
            if kind == "hang":
                time.sleep(HANG_SECS)
            if kind == "garbage":
                junk = hashlib.sha512(str(int(now)).encode()).hexdigest() * 40
                return 200, ("\x00\x01 not a feed " + junk).encode(), {"Content-Type": "application/rss+xml"}
            if kind in ("r301", "r302") and path == feed["path"]:
                host = self.headers.get("Host", "127.0.0.1")
                return int(kind[1:]), b"", {"Location": f"http://{host}{feed['target']}"}
            body, changed = farm.render(feed, now)
            ctype = "application/atom+xml" if feed["format"] == "atom" else "application/rss+xml"
            headers = {"Content-Type": ctype}
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            last_mod = email.utils.formatdate(changed, usegmt=True)
            if kind in ("etag", "gzip", "r301", "r302"):
                headers["ETag"] = etag
                if self.headers.get("If-None-Match") == etag:
                    return 304, b"", {"ETag": etag}
            if kind == "lastmod":
                headers["Last-Modified"] = last_mod
                ims = self.headers.get("If-Modified-Since")
                if ims:
                    try:
                        if email.utils.parsedate_to_datetime(ims).timestamp() >= int(changed):
                            return 304, b"", {"Last-Modified": last_mod}
                    except (TypeError, ValueError):
                        pass
            if kind == "gzip" and "gzip" in (self.headers.get("Accept-Encoding") or ""):
                headers["Content-Encoding"] = "gzip"
                body = gzip.compress(body, mtime=0)  # mtime 0: same bytes for the same feed
            return 200, body, headers

    return Handler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a hanging answer must not keep the process alive at exit


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="Reuters-21578 trade.jsonl.gz")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()

    farm = Farm(load_docs(args.data), epoch=time.time())
    log = RequestLog(args.log)
    servers = []
    for p in range(HEALTHY_PUBLISHERS + 1):
        # Port 0: the kernel picks a free port, so soaks can run beside other services.
        srv = Server(("127.0.0.1", 0), make_handler(farm, log, lambda h: h.server.server_address[1]))
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    ports = [s.server_address[1] for s in servers]
    for f in farm.feeds:
        base = f"http://127.0.0.1:{ports[f['publisher']]}"
        f["url"] = base + f["path"]
        if "target" in f:
            f["target_url"] = base + f["target"]
    manifest = {
        "epoch": farm.epoch, "ports": ports, "feeds": farm.feeds,
        "retry_after": {"r429": RETRY_AFTER_429, "r503date": RETRY_AFTER_503_DATE},
    }
    tmp = args.manifest + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    # Renamed into place: the script waits for the manifest and must never read half of it.
    os.replace(tmp, args.manifest)
    threading.Event().wait()  # serve until killed


if __name__ == "__main__":
    main()
