-- The content hash over the entry's link without its tracking parameters (`utm_*`, `fbclid`,
-- ...), when they differ; '' when the link has none (the content hash is then that hash);
-- NULL when not known (rows from earlier releases, and a row moved to a new id, whose hash
-- stays over the link it had).
-- A feed that stamps a campaign on its links at every request, and also changes what no
-- reader sees (a pixel's token, a nonce class, white space), made its items look edited at
-- every poll: the store compared the HTML byte for byte to tell a tracking-only change. It
-- now compares this hash, which reads the HTML as the content hash does. A NULL row is
-- compared as before until its next write.
ALTER TABLE entries ADD COLUMN untracked_hash TEXT;
