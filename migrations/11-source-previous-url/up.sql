-- The URL a source had before the config last changed it, NULL if it never changed. An entry
-- whose own base (an Atom entry's relative `xml:base`, such as "/news/") resolved against
-- that URL keeps the base it resolved to, and a poll of the new URL compares it with the item
-- read again against the old URL: only its URLs moved, so it is renewed, not re-served as
-- edited (see `ingest`). Entries without a base of their own keep the old URL as theirs
-- (store::write::sync_sources), which needs no column. Sources from earlier releases start
-- NULL: a move made before this release is not known.
ALTER TABLE sources ADD COLUMN previous_url TEXT;
