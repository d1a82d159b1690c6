#!/usr/bin/env python3
"""Generates a feed farm for the tradefeed benchmark: N feeds x M items of real newswire text.

Reads Reuters-21578 (`trade.jsonl.gz`) in place and writes static feed files only; nothing from
the corpus is kept in the repository. Standard library only.

The farm imitates what a trade-news poller sees:
  * mixed formats: RSS 2.0, Atom 1.0 and RSS 1.0 (RDF), rotated over the feeds;
  * about a third of the stories are syndicated to 2-4 outlets, and every copy after the first
    is edited the way syndication edits them: a rewritten headline, a boilerplate line, a
    trimmed tail, and a different URL carrying utm_* tracking parameters;
  * publication dates spread over the last four days before `now` (rounded down to the hour,
    so reruns within an hour produce identical bytes), inside tradefeed's clustering window.

Everything random comes from one seeded generator, so a farm is reproducible. When more stories
are needed than the corpus holds, later stories are sentence mixes of several articles, so they
stay distinct stories instead of accidental copies.

With --aggregators K it also writes K news-search feeds in Google News's format, DIR/gNNNN.xml
(M items each): title-only copies of farm stories, each titled with the story's original
headline and " - Outlet NNNN", linked through a news.google.com redirect that ends in the story
number like every other link, with a description that repeats headline and publisher. They
are drawn from a generator of their own, so the fNNNN.xml files do not change with K.

Usage: gen_farm.py --data trade.jsonl.gz --out DIR --feeds N --items M [--seed S]
                   [--aggregators K]
Writes DIR/fNNNN.xml (and DIR/gNNNN.xml) and DIR/manifest.json (counts); prints the manifest.
"""

import argparse
import datetime as dt
import gzip
import json
import os
import random
import re
from xml.sax.saxutils import escape, quoteattr

FORMATS = ("rss2", "atom", "rss1")
SYNDICATED_SHARE = 1 / 3
MAX_AGE_HOURS = 96
COPY_LAG_HOURS = 6
BOILERPLATE = (
    "(Reporting by {r}; Editing by {e})",
    "This story was provided by a wire service and has not been edited by {o} staff.",
    "Read more trade coverage at {o}.",
    "Copyright {o}. All rights reserved. Republication without consent is prohibited.",
)
REPORTERS = ("Jane Doe", "Ahmed Karim", "Li Wei", "Maria Santos", "Tom Becker", "Yuki Sato")
RETITLE = (
    lambda t, o: "UPDATE 1-" + t,
    lambda t, o: t + " | " + o,
    lambda t, o: t + " - sources",
    lambda t, o: "WRAPUP " + t.upper(),
    lambda t, o: t.rstrip(".") + ", officials say",
)
SECTIONS = ("business", "markets", "world", "economy", "trade")


def load_docs(path):
    """Articles with a headline and a real body, as (title, [paragraph, ...])."""
    docs = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if not d["title"] or len(d["body"]) < 300:
                continue
            body = re.sub(r"\s*Reuter\s*$", "", d["body"].strip())
            # Reuters paragraphs start with an indented line.
            paras = [" ".join(p.split()) for p in re.split(r"\n\s{2,}", body)]
            paras = [p for p in paras if p]
            if paras:
                docs.append((headline_case(d["title"]), paras))
    return docs


def headline_case(title):
    """Reuters headlines are upper case; feeds usually carry them in title case."""
    return " ".join(w.capitalize() if w.isalpha() else w for w in title.split())


def sentences(paras):
    return [s for p in paras for s in re.split(r"(?<=[.!?])\s+", p) if s]


def mixed_story(rng, docs):
    """A distinct story for runs needing more stories than the corpus has: the headline of one
    article over sentences drawn from several others, regrouped into paragraphs."""
    title = rng.choice(docs)[0]
    picked = []
    for _ in range(rng.randint(3, 5)):
        sents = sentences(rng.choice(docs)[1])
        start = rng.randrange(len(sents))
        picked.extend(sents[start : start + rng.randint(2, 4)])
    paras, i = [], 0
    while i < len(picked):
        n = rng.randint(1, 3)
        paras.append(" ".join(picked[i : i + n]))
        i += n
    return title, paras


def slug(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "story"


def outlet(feed):
    return f"Outlet {feed:04d}"


def host(feed):
    return f"www.outlet{feed:04d}.example"


def make_item(rng, story_no, title, paras, feed, published, copy_no):
    """One feed item; copies after the first are edited like syndicated republications."""
    o = outlet(feed)
    paras = list(paras)
    url = f"https://{host(feed)}/{rng.choice(SECTIONS)}/{slug(title)}-{story_no}"
    if copy_no > 0:
        title = rng.choice(RETITLE)(title, o)
        if len(paras) >= 3:
            paras = paras[: max(2, len(paras) - rng.randint(1, 2))]  # trimmed tail
        line = rng.choice(BOILERPLATE).format(r=rng.choice(REPORTERS), e=rng.choice(REPORTERS), o=o)
        if rng.random() < 0.5:
            paras.append(line)
        else:
            paras.insert(0, line)
        url += f"?utm_source=rss&utm_medium=feed&utm_campaign=outlet{feed:04d}"
    html = "".join(f"<p>{escape(p)}</p>" for p in paras)
    return {
        "guid": f"outlet{feed:04d}-story-{story_no}",
        "title": title,
        "link": url,
        "html": html,
        "published": published,
        "author": rng.choice(REPORTERS),
    }


def rfc822(t):
    return t.strftime("%a, %d %b %Y %H:%M:%S +0000")


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def render(fmt, feed, items, now):
    o, h = outlet(feed), host(feed)
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    if fmt == "rss2":
        out.append('<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>\n')
        out.append(f"<title>{o} business news</title><link>https://{h}/</link>")
        out.append(f"<description>Business and trade news from {o}</description>")
        out.append(f"<language>en</language><lastBuildDate>{rfc822(now)}</lastBuildDate>\n")
        for it in items:
            out.append(
                f"<item><title>{escape(it['title'])}</title><link>{escape(it['link'])}</link>"
                f"<guid isPermaLink=\"false\">{it['guid']}</guid>"
                f"<pubDate>{rfc822(it['published'])}</pubDate>"
                f"<author>news@{h} ({it['author']})</author>"
                f"<description>{escape(it['html'])}</description></item>\n"
            )
        out.append("</channel></rss>\n")
    elif fmt == "atom":
        out.append('<feed xmlns="http://www.w3.org/2005/Atom">\n')
        out.append(f"<title>{o} business news</title><id>tag:{h},2026:feed</id>")
        out.append(f'<link rel="alternate" href="https://{h}/"/><updated>{rfc3339(now)}</updated>\n')
        for it in items:
            out.append(
                f"<entry><title>{escape(it['title'])}</title>"
                f"<link rel=\"alternate\" href={quoteattr(it['link'])}/>"
                f"<id>tag:{h},2026:{it['guid']}</id>"
                f"<published>{rfc3339(it['published'])}</published>"
                f"<updated>{rfc3339(it['published'])}</updated>"
                f"<author><name>{it['author']}</name></author>"
                f"<content type=\"html\">{escape(it['html'])}</content></entry>\n"
            )
        out.append("</feed>\n")
    else:
        out.append(
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        )
        out.append(f'<channel rdf:about="https://{h}/rss"><title>{o} business news</title>')
        out.append(f"<link>https://{h}/</link><description>Business news from {o}</description>")
        out.append("<items><rdf:Seq>")
        out.extend(f"<rdf:li rdf:resource={quoteattr(it['link'])}/>" for it in items)
        out.append("</rdf:Seq></items></channel>\n")
        for it in items:
            out.append(
                f"<item rdf:about={quoteattr(it['link'])}><title>{escape(it['title'])}</title>"
                f"<link>{escape(it['link'])}</link><dc:date>{rfc3339(it['published'])}</dc:date>"
                f"<dc:creator>{it['author']}</dc:creator>"
                f"<description>{escape(it['html'])}</description></item>\n"
            )
        out.append("</rdf:RDF>\n")
    return "".join(out)


def render_aggregator(n, items, now):
    """A Google News search feed: headline - publisher, a redirect link, a description that
    repeats the two, and the publisher in <source>."""
    out = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>']
    out.append('<rss xmlns:media="http://search.yahoo.com/mrss/" version="2.0"><channel>')
    out.append("<generator>NFE/5.0</generator>")
    out.append(f"<title>\"trade search {n}\" - Google News</title>")
    out.append(f"<link>https://news.google.com/search?q=trade{n}</link>")
    out.append(f"<language>en-US</language><lastBuildDate>{rfc822(now)}</lastBuildDate>")
    out.append("<description>Google News</description>\n")
    for it in items:
        link = escape(it["link"])
        desc = (
            f'<a href="{it["link"]}" target="_blank">{escape(it["headline"])}</a>'
            f'&nbsp;&nbsp;<font color="#6f6f6f">{escape(it["publisher"])}</font>'
        )
        out.append(
            f"<item><title>{escape(it['headline'])} - {escape(it['publisher'])}</title>"
            f"<link>{link}</link><guid isPermaLink=\"false\">{escape(it['guid'])}</guid>"
            f"<pubDate>{rfc822(it['published'])}</pubDate><description>{escape(desc)}</description>"
            f"<source url=\"https://{it['host']}\">{escape(it['publisher'])}</source></item>\n"
        )
    out.append("</channel></rss>\n")
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="path of trade.jsonl.gz")
    ap.add_argument("--out", required=True, help="folder for the feed files")
    ap.add_argument("--feeds", type=int, default=150)
    ap.add_argument("--items", type=int, default=50)
    ap.add_argument("--seed", type=int, default=21578)
    ap.add_argument("--aggregators", type=int, default=0, help="Google News-format feeds")
    args = ap.parse_args()
    if args.feeds < 1 or args.items < 1:
        ap.error("--feeds and --items must be positive")

    rng = random.Random(args.seed)
    docs = load_docs(args.data)
    rng.shuffle(docs)
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)

    room = [args.items] * args.feeds  # item slots left per feed
    open_feeds = list(range(args.feeds))
    per_feed = [[] for _ in range(args.feeds)]
    stories = syndicated = copies = mixed = 0
    originals = []  # (story number, headline, first feed, first published)
    while open_feeds:
        k = 1
        if rng.random() < SYNDICATED_SHARE:
            k = min(rng.randint(2, 4), len(open_feeds))
        targets = rng.sample(open_feeds, k)
        if stories < len(docs):
            title, paras = docs[stories]
        else:
            title, paras = mixed_story(rng, docs)
            mixed += 1
        base = now - dt.timedelta(seconds=rng.randrange(MAX_AGE_HOURS * 3600))
        originals.append((stories, title, targets[0], base))
        for copy_no, feed in enumerate(targets):
            lag = dt.timedelta(seconds=rng.randrange(COPY_LAG_HOURS * 3600)) if copy_no else dt.timedelta()
            published = min(base + lag, now)
            per_feed[feed].append(make_item(rng, stories, title, paras, feed, published, copy_no))
            room[feed] -= 1
        stories += 1
        if k > 1:
            syndicated += 1
            copies += k - 1
        open_feeds = [f for f in open_feeds if room[f] > 0] if any(room[f] == 0 for f in targets) else open_feeds

    os.makedirs(args.out, exist_ok=True)
    formats = {f: 0 for f in FORMATS}
    total_bytes = 0
    for feed, items in enumerate(per_feed):
        items.sort(key=lambda it: it["published"], reverse=True)
        fmt = FORMATS[feed % len(FORMATS)]
        formats[fmt] += 1
        data = render(fmt, feed, items, now).encode("utf-8")
        total_bytes += len(data)
        with open(os.path.join(args.out, f"f{feed:04d}.xml"), "wb") as f:
            f.write(data)
    agg_rng = random.Random(args.seed + 1)
    aggregated = 0
    for n in range(args.aggregators):
        items = []
        for story_no, title, feed, base in agg_rng.sample(originals, min(args.items, len(originals))):
            lag = dt.timedelta(seconds=agg_rng.randrange(COPY_LAG_HOURS * 3600))
            token = f"CBMi{agg_rng.getrandbits(64):016x}{n:02d}"
            items.append({
                "guid": token,
                "headline": title,
                "publisher": outlet(feed),
                "host": host(feed),
                "link": f"https://news.google.com/rss/articles/{token}-{story_no}?oc=5",
                "published": min(base + lag, now),
            })
        items.sort(key=lambda it: it["published"], reverse=True)
        aggregated += len(items)
        data = render_aggregator(n, items, now).encode("utf-8")
        total_bytes += len(data)
        with open(os.path.join(args.out, f"g{n:04d}.xml"), "wb") as f:
            f.write(data)
    manifest = {
        "feeds": args.feeds,
        "items_per_feed": args.items,
        "items": args.feeds * args.items,
        "stories": stories,
        "syndicated_stories": syndicated,
        "edited_copies": copies,
        "mixed_stories": mixed,
        "aggregator_feeds": args.aggregators,
        "aggregator_items": aggregated,
        "formats": formats,
        "bytes": total_bytes,
        "seed": args.seed,
        "now": rfc3339(now),
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
