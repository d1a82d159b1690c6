-- An item without a publisher id is identified by its link's canonical URL, which leaves
-- out the fragment: the posts of a live blog (`/live#post-1`, `/live#post-2`) were one
-- entry, each new post overwriting the last (review, session 28). The identity now keeps
-- the fragment when it names a place in the page: not empty, and without `=` (`#xtor=RSS-3`
-- and the like are statistics stamps, not places; see `normalize::anchor_of`). The rows
-- stored before take their anchor here by the same rule, so that none is read as a new
-- item at the next poll. `entries.link` holds the resolved link, fragment included.
-- Tombstones keep no link: an item pruned before this release and still listed is taken
-- for a new item once, unless it was published before the retention (then it is skipped).
UPDATE entries
   SET identity = identity || substr(link, instr(link, '#'))
 WHERE identity LIKE 'url:%'
   AND instr(identity, '#') = 0
   AND instr(link, '#') > 0
   AND length(link) > instr(link, '#')
   AND instr(substr(link, instr(link, '#')), '=') = 0;
