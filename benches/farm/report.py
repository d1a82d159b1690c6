#!/usr/bin/python3
"""Prints the feed-farm benchmark's markdown table from farm.sh's results.env and the manifest.

Every ratio compares measurements taken in the same run, on the same farm and web server.
Usage: report.py results.env manifest.json
"""

import json
import sys

MIB = 1024


def load(path):
    values = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep:
                values[key] = value  # later lines win: the best-of-RUNS copies come last
    return values


def num(values, key):
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def fmt(x, digits=2, unit=""):
    return "n/a" if x is None else f"{x:,.{digits}f}{unit}"


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def latency_ms(text):
    """wrk latency ("812.00us", "3.51ms", "1.02s") in milliseconds."""
    if not text:
        return None
    for suffix, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * scale
            except ValueError:
                return None
    return None


def verdict(ok):
    return "n/a" if ok is None else ("PASS" if ok else "**FAIL**")


def main():
    v = load(sys.argv[1])
    with open(sys.argv[2]) as f:
        m = json.load(f)
    feeds, items = m["feeds"], m["items"]
    out = []
    w = out.append

    w(f"## tradefeed feed-farm benchmark ({feeds} feeds × {m['items_per_feed']} items)\n")
    fm = m["formats"]
    w(
        f"Farm: {feeds} feeds, {items:,} items of Reuters-21578 text: {m['stories']:,} stories, "
        f"{m['syndicated_stories']:,} syndicated to 2–4 outlets ({m['edited_copies']:,} edited copies), "
        f"{m['mixed_stories']:,} sentence-mixed stories; {fm['rss2']} RSS 2.0 / {fm['atom']} Atom / "
        f"{fm['rss1']} RSS 1.0 feeds, {m['bytes'] / 1e6:.1f} MB, served by nginx {v.get('nginx_version', '?')} "
        f"on 127.0.0.1."
    )
    w(
        f"Machine: {v.get('cpus', '?')} CPUs, load average {v.get('load_before', '?')} before and "
        f"{v.get('load_after', '?')} after. tradefeed {v.get('tradefeed_rev', '?')} (release), "
        f"newsboat {v.get('newsboat_version', '?')}, feedparser {v.get('feedparser_version', '?')}. "
        f"Best of {v.get('runs', '1')} run(s) per pass.\n"
    )

    # The timing wrapper's own cost, paid by every pass (measured by farm.sh; 0 if absent).
    harness = num(v, "harness_wall") or 0.0

    def net(wall):
        return None if wall is None else max(wall - harness, 0.001)

    tools = (
        ("tf", "tradefeed fetch"),
        ("py", "Python: feedparser + sqlite3, 16 threads"),
        ("nb", "newsboat -x reload, reload-threads 16"),
    )
    w("### Ingest\n")
    w("| pass | tool | wall s | CPU s | peak RSS MiB | feeds/s | items/s | wall vs tradefeed | CPU vs tradefeed | stored items | exit |")
    w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for phase, label in (("cold", "cold (empty store)"), ("warm", "warm (all 304)")):
        tf_wall, tf_cpu = net(num(v, f"tf_{phase}_wall")), num(v, f"tf_{phase}_cpu")
        for key, name in tools:
            wall, cpu = net(num(v, f"{key}_{phase}_wall")), num(v, f"{key}_{phase}_cpu")
            rss = num(v, f"{key}_{phase}_rss_kib")
            ips = fmt(ratio(items, wall), 0) if phase == "cold" else "–"
            vs = "1×" if key == "tf" else fmt(ratio(wall, tf_wall), 1, "×")
            vs_cpu = "1×" if key == "tf" else fmt(ratio(cpu, tf_cpu), 1, "×")
            w(
                f"| {label} | {name} | {fmt(wall, 3)} | {fmt(cpu)} | {fmt(ratio(rss, MIB), 1)} | "
                f"{fmt(ratio(feeds, wall), 0)} | {ips} | {vs} | {vs_cpu} | "
                f"{v.get(key + '_entries', 'n/a')} | {v.get(f'{key}_{phase}_rc', 'n/a')} |"
            )
    w("")
    w(
        f"tradefeed cold: `{v.get('tf_cold_summary', '')}`; {v.get('tf_stories', '?')} stories after clustering "
        f"({m['stories']:,} in the farm): pairwise precision {v.get('tf_cluster_precision', 'n/a')}, recall "
        f"{v.get('tf_cluster_recall', 'n/a')} against the farm's answer key (`farm/cluster_pr.py`).  "
    )
    if harness:
        raw_warm = ratio(num(v, "py_warm_wall"), num(v, "tf_warm_wall"))
        w(
            f"Wall times are net of the timing wrapper's own cost, {harness * 1000:.1f} ms (`bash -c true` "
            f"timed the way every pass is: clock, GNU time, bash with the exported functions; best of "
            f"{v.get('harness_runs', '?')}), which every pass pays. Uncorrected, warm vs Python reads "
            f"{fmt(raw_warm, 1, '×')}.  "
        )
    w(f"tradefeed warm: `{v.get('tf_warm_summary', '')}`.  ")
    w(f"Python cold: `{v.get('py_cold_summary', '')}`; warm: `{v.get('py_warm_summary', '')}`.\n")
    floor = num(v, "parse_floor_secs")
    w(
        f"Parse-only floor: feed-rs alone over the same {v.get('parse_floor_files', '?')} files on one thread "
        f"(`benches/parse_floor.rs`, best of {v.get('parse_floor_rounds', '?')}): {fmt(floor, 3)} s for "
        f"{v.get('parse_floor_items', '?')} items; tradefeed's cold pass used "
        f"{fmt(ratio(num(v, 'tf_cold_cpu'), floor), 1, '×')} that in CPU time.\n"
    )

    w("### Serving `/feeds/trade-policy.atom` (wrk -t2 -c64 --latency)\n")
    w("| server | requests/s | p99 latency | non-2xx | socket errors |")
    w("|---|--:|--:|--:|---|")
    for key, name in (("wrk_nginx", "nginx, same bytes as a static file"), ("wrk_tf", "tradefeed run")):
        w(
            f"| {name} | {fmt(num(v, key + '_rps'), 0)} | {v.get(key + '_p99') or 'n/a'} | "
            f"{v.get(key + '_non2xx') or '0'} | {v.get(key + '_errors') or '-'} |"
        )
    w(
        f"\nThe feed: {v.get('feed_bytes', '?')} bytes, {v.get('feed_entries', '?')} entries. "
        f"tradefeed RSS after the wrk runs: {fmt(ratio(num(v, 'tf_serving_rss_kib'), MIB), 1)} MiB.\n"
    )

    idle_n = v.get("idle_sources", "?")
    w(f"### Idle daemon with {idle_n} sources\n")
    w(
        f"`tradefeed run` polled {v.get('idle_polled', '?')} of {idle_n} sources ({v.get('idle_ok', '?')} ok) "
        f"in its first pass ({v.get('idle_first_pass_secs', '?')} s from start); its search index caught "
        f"up {v.get('idle_index_catch_up_secs', '?')} s after that; VmRSS 5 s later "
        f"{fmt(ratio(num(v, 'idle_rss_5s_kib'), MIB), 1)} MiB, 30 s later (settled, the figure "
        f"judged below) {fmt(ratio(num(v, 'idle_rss_kib'), MIB), 1)} MiB (high-water mark "
        f"{fmt(ratio(num(v, 'idle_hwm_kib'), MIB), 1)} MiB). Restarted on the same database with "
        f"nothing due: VmRSS {fmt(ratio(num(v, 'idle_restart_rss_kib'), MIB), 1)} MiB after 5 s.\n"
    )

    scale = [int(n) for n in v.get("scaling_feeds", "").split()]
    scale_ok = None
    if scale:
        w(f"### Scaling: cold ingest, {m['items_per_feed']} items per feed\n")
        w("| feeds | wall s | CPU s | peak RSS MiB | ms per feed | per-feed time vs smallest | stored items | clustering precision / recall | exit |")
        w("|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        first = None
        worst = None
        for n in scale:
            wall = num(v, f"scale_{n}_wall")
            per = ratio(wall, n)
            if first is None:
                first = per
            growth = ratio(per, first)
            if growth is not None:
                worst = growth if worst is None else max(worst, growth)
            w(
                f"| {n} | {fmt(wall)} | {fmt(num(v, f'scale_{n}_cpu'))} | "
                f"{fmt(ratio(num(v, f'scale_{n}_rss_kib'), MIB), 1)} | {fmt(None if per is None else per * 1000, 1)} | "
                f"{fmt(growth, 2, '×')} | {v.get(f'scale_{n}_entries', 'n/a')} | "
                f"{v.get(f'scale_{n}_cluster_precision', 'n/a')} / {v.get(f'scale_{n}_cluster_recall', 'n/a')} | "
                f"{v.get(f'scale_{n}_rc', 'n/a')} |"
            )
        w("")
        scale_ok = None if worst is None else worst <= 1.5

    w("### Targets\n")
    w("| target | measured | goal | result |")
    w("|---|--:|--:|---|")
    cold_py = ratio(net(num(v, "py_cold_wall")), net(num(v, "tf_cold_wall")))
    cold_nb = ratio(net(num(v, "nb_cold_wall")), net(num(v, "tf_cold_wall")))
    warm_py = ratio(net(num(v, "py_warm_wall")), net(num(v, "tf_warm_wall")))
    rss_cold = ratio(num(v, "tf_cold_rss_kib"), MIB)
    idle = ratio(num(v, "idle_rss_kib"), MIB)
    serve = ratio(num(v, "wrk_tf_rps"), num(v, "wrk_nginx_rps"))
    complete = v.get("tf_cold_rc") == "0" and v.get("tf_entries") == str(items)
    warm_304 = v.get("tf_warm_rc") == "0" and v.get("tf_warm_not_modified") == str(feeds)

    def row(name, measured, goal, ok):
        w(f"| {name} | {measured} | {goal} | {verdict(ok)} |")

    row("tradefeed stores every item, no failed source (cold)", f"{v.get('tf_entries', '?')} of {items:,}, exit {v.get('tf_cold_rc', '?')}", "all, exit 0", complete)
    row("tradefeed warm pass is all 304", f"{v.get('tf_warm_not_modified', '?')} of {feeds}", "all", warm_304)
    row("cold ingest vs Python ingester (wall)", fmt(cold_py, 1, "× faster"), "≥ 10×", None if cold_py is None else cold_py >= 10)
    row("cold ingest vs newsboat (wall)", fmt(cold_nb, 1, "× faster"), "≥ 10×", None if cold_nb is None else cold_nb >= 10)
    row("warm re-poll vs Python warm pass (wall)", fmt(warm_py, 1, "× faster"), "≥ 5×", None if warm_py is None else warm_py >= 5)
    row("peak RSS, cold pass", fmt(rss_cold, 1, " MiB"), "≤ 64 MiB", None if rss_cold is None else rss_cold <= 64)
    row(f"idle daemon RSS, {idle_n} sources, settled (30 s after its first pass)", fmt(idle, 1, " MiB"), "≤ 32 MiB", None if idle is None else idle <= 32)
    row("serving trade-policy feed vs nginx (requests/s)", fmt(serve, 2, "×"), "≥ 0.5×", None if serve is None else serve >= 0.5)
    pipeline = ratio(num(v, "tf_cold_cpu"), num(v, "parse_floor_secs"))
    floor_items = v.get("parse_floor_items") == str(items)
    row(
        "whole cold pipeline vs parse-only floor (CPU s, same bytes)",
        fmt(pipeline, 1, "× the floor"),
        "≤ 3×",
        None if pipeline is None or not floor_items else pipeline <= 3,
    )
    p99_tf, p99_ngx = latency_ms(v.get("wrk_tf_p99")), latency_ms(v.get("wrk_nginx_p99"))
    row("p99 latency, tradefeed vs nginx (info)", f"{fmt(p99_tf, 2, ' ms')} vs {fmt(p99_ngx, 2, ' ms')}", "–", None)
    if scale:
        row(f"scaling {scale[0]}→{scale[-1]} feeds: worst per-feed time vs smallest", fmt(worst, 2, "×"), "≤ 1.5× (linear)", scale_ok)
    print("\n".join(out))


if __name__ == "__main__":
    main()
