#!/usr/bin/python3
"""Pairwise precision and recall of tradefeed's story clustering on a generated farm.

gen_farm.py ends every item's link in "-<story number>", the same number on every copy of one
story, so the farm carries its own answer key. Two entries form a true pair when they share a
story number and a predicted pair when tradefeed put them in one story. Counted from the
contingency table (no pair enumeration), so 120,000 entries take a second.

Usage: cluster_pr.py DB  ->  precision=P recall=R stories=N true_stories=N entries=N unkeyed=N
"""

import collections
import re
import sqlite3
import sys

STORY_NO = re.compile(r"-(\d+)(?:[?#]|$)")


def pairs(n):
    return n * (n - 1) // 2


def main():
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
    predicted = collections.Counter()
    true = collections.Counter()
    cells = collections.Counter()
    unkeyed = 0
    for story, link in db.execute("SELECT story_id, link FROM entries"):
        m = STORY_NO.search(link or "")
        if not m:
            unkeyed += 1  # not a farm item: left out of both sides
            continue
        truth = int(m.group(1))
        predicted[story] += 1
        true[truth] += 1
        cells[(story, truth)] += 1
    both = sum(pairs(n) for n in cells.values())
    pred_pairs = sum(pairs(n) for n in predicted.values())
    true_pairs = sum(pairs(n) for n in true.values())
    precision = both / pred_pairs if pred_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    print(
        f"precision={precision:.4f} recall={recall:.4f} stories={len(predicted)} "
        f"true_stories={len(true)} entries={sum(true.values())} unkeyed={unkeyed}"
    )


if __name__ == "__main__":
    main()
