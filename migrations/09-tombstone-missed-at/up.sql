-- A tombstone is needed while its feed lists the identity. Its grace is counted from the first
-- read of the feed (a 200) that did not list it, which neither `pruned_at` nor the fetch log
-- (pruned at the retention cutoff) can tell: a feed answering 304 for a week after the last
-- read that listed an item, then dropping it for a day, lost the tombstone at once. Each 200
-- sets `missed_at` to its start on the source's tombstones it did not list and clears it on
-- those it did; the prune forgets those missed more than the grace ago. Rows from earlier
-- releases start NULL: not yet missed, so the next read of their feed decides.
ALTER TABLE tombstones ADD COLUMN missed_at INTEGER;
