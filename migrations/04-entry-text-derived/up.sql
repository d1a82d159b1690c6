-- An entry's plain text is derived from its sanitized HTML (which stays) and was never read
-- back: the ingest wrote it for every entry, a sixth of the database on the feed farm. A story
-- keeps its representative's text, which search, scoring and the output feeds read.
ALTER TABLE entries DROP COLUMN text;
