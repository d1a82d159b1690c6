-- Search indexing leaves the ingest path. Indexing a 300-word story in FTS5 cost about ten times
-- everything else a poll writes for it, so the writer now indexes new stories when it is idle
-- (and before any search runs), in id order. Story ids only grow (AUTOINCREMENT), so one
-- watermark says what is indexed: every story with id <= search_indexed_upto, and no other.
DROP TRIGGER stories_fts_insert;
DROP TRIGGER stories_fts_delete;
DROP TRIGGER stories_fts_update;

INSERT INTO meta (key, value)
VALUES ('search_indexed_upto', CAST(coalesce((SELECT max(id) FROM stories), 0) AS TEXT));

-- Only an indexed story has index entries to remove or replace; the others are indexed later
-- with whatever text they have then.
CREATE TRIGGER stories_fts_delete AFTER DELETE ON stories
WHEN old.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'search_indexed_upto')
BEGIN
    INSERT INTO stories_fts (stories_fts, rowid, title, text)
    VALUES ('delete', old.id, old.title, old.text);
END;
CREATE TRIGGER stories_fts_update AFTER UPDATE OF title, text ON stories
WHEN old.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'search_indexed_upto')
BEGIN
    INSERT INTO stories_fts (stories_fts, rowid, title, text)
    VALUES ('delete', old.id, old.title, old.text);
    INSERT INTO stories_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
END;
