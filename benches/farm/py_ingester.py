#!/usr/bin/python3
"""The peer tradefeed is compared with: the feed ingester many users write by hand.

feedparser + sqlite3 + a 16-thread pool, written the way a careful user would: one shared
connection guarded by a lock (WAL, synchronous=NORMAL), conditional GET with the stored ETag and
Last-Modified so a re-poll of unchanged feeds costs a 304, INSERT OR IGNORE on (feed, guid) so a
re-fetch never duplicates, and one commit per feed.

Usage: py_ingester.py --urls FILE --db PATH [--threads 16]
Prints one summary line: feeds, ok, not_modified, failed, items, new.
"""

import argparse
import concurrent.futures
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.request

import feedparser

SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, title TEXT, last_polled REAL);
CREATE TABLE IF NOT EXISTS items (
    feed_url TEXT NOT NULL, guid TEXT NOT NULL, title TEXT, link TEXT, author TEXT,
    published TEXT, summary TEXT, content TEXT, PRIMARY KEY (feed_url, guid));
"""


def main():
    ap = argparse.ArgumentParser(description="hand-written feedparser + sqlite3 ingester")
    ap.add_argument("--urls", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--threads", type=int, default=16)
    args = ap.parse_args()

    with open(args.urls) as f:
        urls = [line.strip() for line in f if line.strip()]
    db = sqlite3.connect(args.db, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    lock = threading.Lock()
    with lock:
        validators = {u: (e, m) for u, e, m in db.execute("SELECT url, etag, last_modified FROM feeds")}

    def poll(url):
        etag, modified = validators.get(url, (None, None))
        req = urllib.request.Request(url, headers={"User-Agent": "py-ingester/1.0"})
        if etag:
            req.add_header("If-None-Match", etag)
        if modified:
            req.add_header("If-Modified-Since", modified)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                body = resp.read()
                etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
        except urllib.error.HTTPError as e:
            if e.code == 304:
                return "not_modified", 0, 0
            return "failed", 0, 0
        except OSError as e:
            print(f"{url}: {e}", file=sys.stderr)
            return "failed", 0, 0
        parsed = feedparser.parse(body)
        rows = []
        for entry in parsed.entries:
            guid = entry.get("id") or entry.get("link") or entry.get("title")
            content = entry.get("content")
            rows.append(
                (
                    url,
                    guid,
                    entry.get("title"),
                    entry.get("link"),
                    entry.get("author"),
                    entry.get("published") or entry.get("updated"),
                    entry.get("summary"),
                    content[0].value if content else None,
                )
            )
        with lock:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            new = db.total_changes - before
            db.execute(
                "INSERT OR REPLACE INTO feeds VALUES (?, ?, ?, ?, ?)",
                (url, etag, modified, parsed.feed.get("title"), time.time()),
            )
            db.commit()
        return "ok", len(rows), new

    counts = {"ok": 0, "not_modified": 0, "failed": 0}
    items = new = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.threads) as pool:
        for outcome, n, fresh in pool.map(poll, urls):
            counts[outcome] += 1
            items += n
            new += fresh
    db.close()
    print(
        f"feeds={len(urls)} ok={counts['ok']} not_modified={counts['not_modified']} "
        f"failed={counts['failed']} items={items} new={new}"
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
