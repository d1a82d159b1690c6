-- An entry's enclosures (a podcast's audio, a video, a document) and lead image, as compact
-- JSON (domain::Media's serde form: {"enc":[{"url","type","length","title","secs"}],"img"}),
-- NULL when it has none. The served story shows its representative's. Rows from earlier
-- releases start NULL: no backfill here. A row whose item has enclosures takes them at the
-- next poll that lists it (its content hash without them is recognised as unedited); one with
-- only an image takes it with its next edit.
ALTER TABLE entries ADD COLUMN media TEXT;
