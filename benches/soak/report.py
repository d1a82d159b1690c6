#!/usr/bin/env python3
"""Judges a soak run (benches/soak.sh) from the logs it collected; prints the checks table.

Reads, from the run folder: manifest.json (the farm's feeds), config-initial.json,
requests.jsonl (every request the farm answered), load.jsonl (every request of the load
clients), samples.jsonl (process and database samples), edits.jsonl (config edits),
daemon.log (tradefeed's JSON log), facts.env (stop/restart times, PRAGMA results) and the
database itself (read-only). Every value below is computed from those: nothing is assumed.

Writes soak-results.md beside them and exits 1 when any check fails. A check that needs more
run time than the run had (the memory windows of a 2-minute smoke) reads SKIP, not PASS.
Standard library only.
"""

import argparse
import datetime as dt
import json
import math
import os
import re
import sqlite3
import statistics
import sys

# --- Limits: what a demanding operator expects of a daemon that runs for months -----------------
REQUESTS_PER_SLOT_MAX = 1.05  # publisher politeness: one request per scheduled slot
SLOT_COVERAGE_MIN = 0.95  # every healthy source polled in at least 95 % of its slots
CONDITIONAL_SHARE_MIN = 0.95  # polls of a feed with validators that send them back
RSS_GROWTH_MAX_MIB = 5.0  # lowest RSS of the last window vs the first full window
FD_GROWTH_MAX = 2
THREAD_GROWTH_MAX = 2
WAL_MAX_MIB = 64.0  # the README's bound: the writer's backstop checkpoint at 64 MiB
SERIES_GROWTH_MAX = 2  # series without a source label, first full window to the end
RELOAD_APPLY_MAX_S = 5.0  # the file watcher looks every 2 s
NEW_URL_POLLED_MAX_S = 10.0  # a new source or URL is polled at once
STALE_URL_GRACE_S = 15.0  # after the edit: reload (≤ 5 s) + a poll already running (timeout 10 s)
P50_MAX_MS = 100.0
P99_MAX_MS = 1000.0
STOP_MAX_S = 10.0
RESTART_MAX_S = 5.0
WARMUP_S = 60  # the first minute after start is start-up, not steady state
STABLE_KINDS = ("etag", "lastmod", "plain", "gzip", "r301", "r302")
BACKOFF_KINDS = ("e500", "e503", "e404", "hang", "garbage")


def jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(math.ceil(p / 100 * len(values))) - 1)]


class Report:
    def __init__(self, run):
        self.run = run
        self.rows = []  # (measure, value, limit, verdict)

    def check(self, measure, value, limit, ok):
        verdict = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        self.rows.append((measure, value, limit, verdict))

    def table(self):
        lines = ["| check | value | limit | result |", "|---|---|---|---|"]
        lines += [f"| {m} | {v} | {l} | {r} |" for m, v, l, r in self.rows]
        return "\n".join(lines)

    def failed(self):
        return [r for r in self.rows if r[3] == "FAIL"]


def log_lines(path):
    """tradefeed's JSON log lines, with their time as Unix seconds."""
    out = []
    for rec in jsonl(path):
        ts = rec.get("timestamp", "")
        try:
            rec["t"] = dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        out.append(rec)
    return out


def slots(times, period):
    """Requests grouped into the source's schedule slots.

    Polls of a source fall at a fixed offset (its jitter) inside each slot. The offset is
    estimated as the median of the times modulo the period (taken around the first time, so an
    offset near the slot's edge does not split), and each request goes to the nearest slot.
    Returns ({slot index: requests}, offset).
    """
    if not times:
        return {}, 0.0
    ref = times[0] % period
    deltas = [((t % period) - ref + period / 2) % period - period / 2 for t in times]
    offset = (ref + statistics.median(deltas)) % period
    counts = {}
    for t in times:
        k = round((t - offset) / period)
        counts[k] = counts.get(k, 0) + 1
    return counts, offset


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True)
    run = ap.parse_args().run
    p = lambda name: os.path.join(run, name)  # noqa: E731

    manifest = json.load(open(p("manifest.json")))
    initial = json.load(open(p("config-initial.json")))
    facts = dict(line.rstrip("\n").split("=", 1) for line in open(p("facts.env")) if "=" in line)
    requests = jsonl(p("requests.jsonl"))
    load = jsonl(p("load.jsonl"))
    samples = [s for s in jsonl(p("samples.jsonl")) if "VmRSS" in s]
    edits = jsonl(p("edits.jsonl"))
    daemon = log_lines(p("daemon.log"))
    start, end = float(facts["daemon_start"]), float(facts["soak_end"])
    w0 = start + WARMUP_S
    soak_secs = end - start
    r = Report(run)

    feeds = {f["url"]: f for f in manifest["feeds"]}
    by_url = {}  # requests per URL (the farm logs the port and path)
    for q in requests:
        by_url.setdefault(f"http://127.0.0.1:{q['port']}{q['path']}", []).append(q)
    for reqs in by_url.values():
        reqs.sort(key=lambda q: q["t"])
    stable = [s for s in initial["sources"] if s["name"].startswith("stable-")]
    period_of = {s["url"]: (120 if s["schedule"].startswith("*/2") else 60) for s in stable}

    # --- Publisher politeness and slot coverage (stable healthy sources, steady state) ---------
    total_req = total_slots = 0
    worst_slot, worst_cov, worst_cov_name = 0, 1.0, ""
    repeated = []  # (source, seconds after start, requests) of slots polled more than once
    for s in stable:
        url, period = s["url"], period_of[s["url"]]
        times = [q["t"] for q in by_url.get(url, []) if w0 <= q["t"] <= end]
        counts, offset = slots(times, period)
        total_req += len(times)
        total_slots += len(counts)
        worst_slot = max([worst_slot] + list(counts.values()))
        repeated += [(s["name"], k * period + offset - start, n) for k, n in counts.items() if n > 1]
        # Slots whose time falls inside the window, less the last 15 s (a poll may lag a little).
        first = math.ceil((w0 - offset) / period)
        last = math.floor((end - 15 - offset) / period)
        expected = set(range(first, last + 1))
        cov = len(expected & set(counts)) / len(expected) if expected else 1.0
        if cov < worst_cov:
            worst_cov, worst_cov_name = cov, s["name"]
    ratio = total_req / total_slots if total_slots else float("nan")
    r.check("requests per scheduled slot, healthy sources (publisher politeness)",
            f"{ratio:.3f} ({total_req} requests / {total_slots} slots; most in one slot {worst_slot})",
            f"≤ {REQUESTS_PER_SLOT_MAX}", total_slots > 0 and ratio <= REQUESTS_PER_SLOT_MAX)
    # The README promises it: "due times are whole seconds, rounded up, so each slot is polled
    # once". A second poll of an unchanged feed in the same slot is pure load on the publisher.
    r.check("slots of healthy sources polled more than once",
            f"{len(repeated)}" + "".join(f"; {n}× {name} at +{t:.0f} s" for name, t, n in repeated[:4]),
            "0", not repeated)
    r.check("slots polled, worst healthy source",
            f"{worst_cov:.1%}" + (f" ({worst_cov_name})" if worst_cov < 1 else "") + f", {len(stable)} sources",
            f"≥ {SLOT_COVERAGE_MIN:.0%}", worst_cov >= SLOT_COVERAGE_MIN)

    # --- Conditional GET, gzip ------------------------------------------------------------------
    def validators(kinds, sent_key, served_key, target=False):
        """Polls after the first answer with a validator: how many sent one back, how many sent
        one other than the last the server gave (stale), and how many were answered 304."""
        sent = total = stale = n304 = 0
        for s in stable:
            f = feeds[s["url"]]
            if f["kind"] not in kinds:
                continue
            last = None
            for q in by_url.get(f["target_url"] if target else s["url"], []):
                if last is not None:
                    total += 1
                    sent += bool(q.get(sent_key))
                    stale += bool(q.get(sent_key)) and q.get(sent_key) != last
                    n304 += q["status"] == 304
                last = q.get(served_key) or last
        return sent, total, stale, n304

    for label, kinds, sent_key, served_key, target in (
        ("ETag feeds: polls sending If-None-Match", ("etag", "gzip"), "inm", "etag", False),
        ("Last-Modified feeds: polls sending If-Modified-Since", ("lastmod",), "ims", "lm", False),
        ("redirected feeds (301/302): polls of the target sending If-None-Match", ("r301", "r302"), "inm", "etag", True),
    ):
        sent, total, stale, n304 = validators(kinds, sent_key, served_key, target)
        share = sent / total if total else float("nan")
        r.check(label, f"{share:.1%} of {total}, {stale} stale; {n304} answered 304",
                f"≥ {CONDITIONAL_SHARE_MIN:.0%}, 0 stale, some 304", total > 0 and share >= CONDITIONAL_SHARE_MIN
                and stale == 0 and n304 > 0)
    gz = [q for s in stable if feeds[s["url"]]["kind"] == "gzip" for q in by_url.get(s["url"], [])]
    gz_ok = sum(1 for q in gz if "gzip" in (q.get("ae") or ""))
    r.check("gzip feeds: requests accepting gzip", f"{gz_ok} of {len(gz)}", "all", bool(gz) and gz_ok == len(gz))

    # --- Failing sources: 410, Retry-After, backoff ---------------------------------------------
    failing = {f["kind"]: f for f in manifest["feeds"] if f["role"] == "failing"}
    gone = by_url.get(failing["e410"]["url"], [])
    first_410 = next((i for i, q in enumerate(gone) if q["status"] == 410), None)
    after = len(gone) - first_410 - 1 if first_410 is not None else 0
    r.check("requests to the 410 source after its first 410", f"{after} (of {len(gone)} in all)", "0",
            first_410 is not None and after == 0)

    violations, answers, gaps = 0, 0, []
    for kind, asked in manifest["retry_after"].items():
        reqs = by_url.get(failing[kind]["url"], [])
        for i, q in enumerate(reqs):
            if q["status"] not in (429, 503):
                continue
            answers += 1
            if i + 1 < len(reqs):
                gap = reqs[i + 1]["t"] - q["end"]
                gaps.append(gap - asked)
                # Whole seconds: the daemon stores due times to the second.
                if gap < asked - 1:
                    violations += 1
    r.check("Retry-After honoured (429 with seconds, 503 with a date)",
            f"{violations} early of {answers} answers"
            + (f"; next request {min(gaps):+.1f} s after the asked time at the earliest" if gaps else "; no retry due yet"),
            "0 early", answers > 0 and violations == 0)

    early, checked = [], 0
    for kind in BACKOFF_KINDS:
        reqs = by_url.get(failing[kind]["url"], [])
        for n in range(1, len(reqs)):
            # After the n-th failure in a row the wait is at least base * 2^(n-1), capped.
            delay = min(60 * 2 ** (n - 1), 3600)
            gap = reqs[n]["t"] - reqs[n - 1]["t"]
            checked += 1
            if gap < delay - 1:
                early.append(f"{kind} #{n + 1} after {gap:.0f} s < {delay} s")
    r.check("failing sources back off (500, 503, 404, hanging, garbage)",
            f"{len(early)} early of {checked} retries" + (f": {'; '.join(early[:3])}" if early else ""),
            "0 early", checked > 0 and not early)

    # --- Config churn -----------------------------------------------------------------------------
    reloaded = [d["t"] for d in daemon if d["fields"].get("message") == "config reloaded"]
    failed = [(d["t"], d["fields"].get("error", "")) for d in daemon
              if d["fields"].get("message", "").startswith("config reload failed")]
    valid = [e for e in edits if e["valid"]]
    invalid = [e for e in edits if not e["valid"]]
    lat, not_applied = [], []
    for i, e in enumerate(valid):
        after_edit = [t for t in reloaded if t >= e["t"]]
        if after_edit and e.get("db_applied"):
            lat.append(max(after_edit[0], e["db_applied"]) - e["t"])
        else:
            not_applied.append(f"#{e['n']} {e['kind']}")
    r.check("valid config edits applied (log + database), slowest",
            f"{len(lat)} of {len(valid)}" + (f", slowest {max(lat):.1f} s" if lat else "")
            + (f"; not applied: {', '.join(not_applied)}" if not_applied else ""),
            f"all, ≤ {RELOAD_APPLY_MAX_S:.0f} s", (not not_applied and max(lat) <= RELOAD_APPLY_MAX_S) if valid else None)
    refused, bad = 0, []
    for e in invalid:
        nxt = min([x["t"] for x in edits if x["t"] > e["t"]] + [end + 60])
        errs = [m for t, m in failed if e["t"] <= t < nxt]
        named = any(f"tradefeed.toml:{e['line']}: {e['key']}" in m for m in errs)
        applied = any(e["t"] <= t < nxt for t in reloaded)
        if named and not applied and e.get("db_kept_old") and e.get("counted_failed"):
            refused += 1
        else:
            bad.append(f"#{e['n']} {e['kind']}: named={named} applied={applied} kept={e.get('db_kept_old')} "
                       f"counted={bool(e.get('counted_failed'))}")
    r.check("invalid config edits refused with file:line: key, old config kept",
            f"{refused} of {len(invalid)}" + (f"; {'; '.join(bad)}" if bad else ""), "all",
            (refused == len(invalid)) if invalid else None)  # none in a run shorter than 3 edits

    # Where each URL was configured: the config in force after each applied edit.
    # Counted from the moment the file was written: a new URL may be polled at once.
    timeline = [(start, {s["url"] for s in initial["sources"]})]
    for e in valid:
        timeline.append((e["t"], {x[1] for x in e["expect"]}))

    def configured(url, t):
        urls = timeline[0][1]
        for t_applied, u in timeline:
            if t_applied <= t:
                urls = u
        return url in urls

    late = []
    for e in valid:
        new_url = None
        if e["kind"] == "add":
            new_url = e["detail"].split()[-1]
        elif e["kind"] == "url":
            new_url = e["detail"].split(" -> ")[-1]
        if new_url:
            first = next((q["t"] for q in by_url.get(new_url, []) if q["t"] >= e["t"]), None)
            late.append(first - e["t"] if first else float("inf"))
    r.check("new source / new URL first polled after the edit, slowest",
            f"{max(late):.1f} s over {len(late)} edits" if late else "no such edit", f"≤ {NEW_URL_POLLED_MAX_S:.0f} s",
            (max(late) <= NEW_URL_POLLED_MAX_S) if late else None)
    churn_urls = {f["url"] for f in manifest["feeds"] if f["role"] in ("churn", "pool")}
    stale = [(url, q["t"]) for url in churn_urls for q in by_url.get(url, [])
             if start <= q["t"] <= end and not configured(url, q["t"]) and not configured(url, q["t"] - STALE_URL_GRACE_S)]
    r.check("requests to removed or replaced URLs", f"{len(stale)}", f"0 (after {STALE_URL_GRACE_S:.0f} s)",
            not stale)

    # --- Memory, fds, threads, WAL, metrics (samples) ---------------------------------------------
    window = max(90.0, soak_secs / 5)
    first_w = [s for s in samples if w0 <= s["t"] < w0 + window]
    last_w = [s for s in samples if end - window <= s["t"] <= end + 5]
    enough = soak_secs >= WARMUP_S + 2 * window and first_w and last_w
    mib = lambda kib: kib / 1024  # noqa: E731
    if enough:
        rss0, rss1 = min(s["VmRSS"] for s in first_w), min(s["VmRSS"] for s in last_w)
        growth = mib(rss1 - rss0)
        r.check("RSS growth (lowest in last window vs first full window)",
                f"{growth:+.1f} MiB ({mib(rss0):.1f} → {mib(rss1):.1f}; peak {mib(max(s['VmRSS'] for s in samples)):.1f})",
                f"≤ {RSS_GROWTH_MAX_MIB} MiB", growth <= RSS_GROWTH_MAX_MIB)
        fd0, fd1 = min(s["fds"] for s in first_w), min(s["fds"] for s in last_w)
        r.check("open fds (lowest, last window vs first)", f"{fd0} → {fd1} (max {max(s['fds'] for s in samples)})",
                f"+{FD_GROWTH_MAX}", fd1 - fd0 <= FD_GROWTH_MAX)
        th0, th1 = min(s["Threads"] for s in first_w), min(s["Threads"] for s in last_w)
        r.check("threads (lowest, last window vs first)", f"{th0} → {th1} (max {max(s['Threads'] for s in samples)})",
                f"+{THREAD_GROWTH_MAX}", th1 - th0 <= THREAD_GROWTH_MAX)
        se0 = max(s.get("series_without_source", 0) for s in first_w)
        se1 = max(s.get("series_without_source", 0) for s in last_w)
        all0, all1 = max(s.get("series", 0) for s in first_w), max(s.get("series", 0) for s in last_w)
        # Counters of removed or renamed sources stay until a restart (documented), so only the
        # series without a source label must stay flat; all series are shown for reference.
        r.check("/metrics series without a source label (first window → last)",
                f"{se0} → {se1} (all series {all0} → {all1})",
                f"+{SERIES_GROWTH_MAX}", se1 - se0 <= SERIES_GROWTH_MAX)
    else:
        for m in ("RSS growth", "open fds", "threads", "/metrics series without a source label"):
            r.check(m, f"run too short ({soak_secs:.0f} s; needs {WARMUP_S + 2 * window:.0f})", "-", None)
    wal = max((s["wal_bytes"] for s in samples), default=0) / 2**20
    r.check("WAL size, largest sample", f"{wal:.1f} MiB (database {samples[-1]['db_bytes'] / 2**20:.1f} MiB at the end)" if samples else "no samples",
            f"≤ {WAL_MAX_MIB:.0f} MiB", bool(samples) and wal <= WAL_MAX_MIB)
    # Per-source gauges must follow the config: a removed source's series goes at once. Samples
    # taken while an edit was still being applied are left out.
    busy = [(e["t"], e.get("db_applied", e["watched_until"]) + 3) for e in edits]
    steady = [s for s in samples if "source_gauges" in s and not any(a <= s["t"] <= b for a, b in busy)]
    off = [f"{s['source_gauges']} vs {s['configured']}" for s in steady if s["source_gauges"] != s["configured"]]
    r.check("per-source gauge series = configured sources, in every sample",
            f"{len(steady) - len(off)} of {len(steady)} samples" + (f" (mismatch: {', '.join(off[:3])})" if off else ""),
            "all", bool(steady) and not off)

    # --- Serving under load ------------------------------------------------------------------------
    during = [x for x in load if start <= x["t"] <= end]
    five = sum(1 for x in during if x["status"] >= 500)
    dead = sum(1 for x in during if x["status"] == 0)
    unexpected = [x for x in during if not x["ok"]]
    r.check("load: HTTP 5xx", f"{five} of {len(during)} requests", "0", bool(during) and five == 0)
    r.check("load: failed connections or unexpected status", f"{len(unexpected)} ({dead} no answer)"
            + (f": {unexpected[0]['path']} → {unexpected[0]['status']}" if unexpected else ""), "0", not unexpected)
    ms = [x["ms"] for x in during if x["status"]]
    worst = max({x["route"] for x in during}, key=lambda rt: pct([x["ms"] for x in during if x["route"] == rt], 99),
                default="-")
    p50, p99 = pct(ms, 50), pct(ms, 99)
    # The worst p99 of any 30-second stretch: a slow spell (a checkpoint, a prune) shows here
    # even when the whole run's p99 hides it.
    spells = {}
    for x in during:
        if x["status"]:
            spells.setdefault(int((x["t"] - start) // 30), []).append(x["ms"])
    worst_spell = max((pct(v, 99) for v in spells.values() if len(v) >= 100), default=float("nan"))
    r.check("load: latency p50 / p99 (all routes)",
            f"{p50:.1f} / {p99:.1f} ms over {len(ms)} requests ({len(ms) / max(soak_secs, 1):.1f}/s); "
            f"worst 30 s p99 {worst_spell:.1f} ms; slowest route: {worst}",
            f"≤ {P50_MAX_MS:.0f} / {P99_MAX_MS:.0f} ms", bool(ms) and p50 <= P50_MAX_MS and p99 <= P99_MAX_MS)

    # --- Data ---------------------------------------------------------------------------------------
    db = sqlite3.connect(f"file:{p('tradefeed.db')}?mode=ro", uri=True)
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    back = one("SELECT count(*) FROM entries e JOIN tombstones t USING (source_id, identity)")
    tombs = one("SELECT count(*) FROM tombstones")
    pruned = sum(d["fields"].get("entries", 0) for d in daemon if d["fields"].get("message") == "pruned by retention")
    r.check("pruned entries brought back by feeds still listing them",
            f"{back} (aged {facts.get('aged_entries')}, pruned {pruned}, tombstones {tombs})", "0",
            back == 0 and pruned > 0)
    ancient = one("SELECT count(*) FROM entries WHERE identity LIKE '%ancient%'")
    r.check("items dated before the retention taken in", str(ancient), "0", ancient == 0)
    wires = {}
    for link, story in db.execute("SELECT link, story_id FROM entries WHERE link LIKE '%/wire-%'"):
        m = re.search(r"wire-(-?\d+)", link or "")
        if m:
            wires.setdefault(m.group(1), set()).add(story)
    split = sum(1 for s in wires.values() if len(s) > 1)
    r.check("syndicated stories (same guid or same text) split into several stories",
            f"{split} of {len(wires)}", "0", bool(wires) and split == 0)
    unhealthy = [n for (n,) in db.execute(
        "SELECT name FROM sources WHERE name LIKE 'stable-%' AND (consecutive_failures > 0 OR last_outcome NOT IN ('ok', 'not_modified'))")]
    r.check("healthy sources failing at the end (tradefeed's view)", str(len(unhealthy)) + (f": {', '.join(unhealthy)}" if unhealthy else ""),
            "0", not unhealthy)
    crashed = one("SELECT count(*) FROM fetches WHERE outcome = 'crashed'")
    errors = [d for d in daemon if d["level"] == "ERROR" and not d["fields"].get("message", "").startswith("config reload failed")]
    r.check("daemon errors (other than refused configs) and crashed polls",
            f"{len(errors)} errors, {crashed} crashed" + (f": {errors[0]['fields'].get('message')}" if errors else ""),
            "0", not errors and crashed == 0)
    try:
        items = json.load(open(p("after-restart.json")))["items"]
        ids = [i["id"] for i in items]
        dup_ids = len(ids) - len(set(ids))
        wire_links = [re.search(r"wire-(-?\d+)", a["url"]).group(1) for i in items
                      for a in i["_tradefeed"]["appearances"][:1] if "wire-" in (a.get("url") or "")]
        dup_wire = len(wire_links) - len(set(wire_links))
        r.check("stories served twice (all.json after restart)", f"{dup_ids} ids, {dup_wire} wire stories; {len(items)} served",
                "0", dup_ids == 0 and dup_wire == 0 and len(items) > 0)
    except (OSError, ValueError, KeyError) as e:
        r.check("stories served twice (all.json after restart)", f"unreadable: {e}", "0", False)

    # --- Stop, restart, database -------------------------------------------------------------------
    r.check("SIGTERM: exit status, time to exit", f"{facts['stop_exit']}, {facts['stop_secs']} s",
            f"0, ≤ {STOP_MAX_S:.0f} s", facts["stop_exit"] == "0" and float(facts["stop_secs"]) <= STOP_MAX_S)
    r.check("restart on the same database: time until it serves the feed", f"{facts['restart_secs']} s",
            f"≤ {RESTART_MAX_S:.0f} s", float(facts["restart_secs"]) <= RESTART_MAX_S)
    r.check("second SIGTERM (after the restart)", f"{facts['restart_stop_exit']}, {facts['restart_stop_secs']} s",
            f"0, ≤ {STOP_MAX_S:.0f} s", facts["restart_stop_exit"] == "0" and float(facts["restart_stop_secs"]) <= STOP_MAX_S)
    r.check("PRAGMA integrity_check / foreign_key_check", f"{facts['integrity'].strip()} / {facts['foreign_key_problems']} rows",
            "ok / 0", facts["integrity"].strip() == "ok" and facts["foreign_key_problems"] == "0")

    # --- Output -------------------------------------------------------------------------------------
    last = samples[-1] if samples else {}
    counts = ", ".join(f"{t} {last[t]}" for t in ("entries", "stories", "tombstones", "fetches") if t in last)
    head = (f"Soak of {soak_secs:.0f} s: {len(initial['sources'])} sources at start, {len(edits)} config edits, "
            f"{len(requests)} requests to the farm, {len(load)} load requests; at the end {counts}.")
    out = f"{head}\n\n{r.table()}\n"
    fails = r.failed()
    out += f"\n{len(r.rows) - len(fails)} of {len(r.rows)} checks passed or skipped" + (
        f"; FAILED: {', '.join(f[0] for f in fails)}\n" if fails else ".\n")
    print(out)
    with open(p("soak-results.md"), "w") as f:
        f.write(out)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
