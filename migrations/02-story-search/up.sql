-- Full-text search over stories (the status page's search box and `?q=` on the feeds).
-- An external-content FTS5 index: the text lives once, in `stories`; triggers keep the index in
-- step. Porter stemming so "tariff" finds "tariffs"; diacritics folded so "Zolle" finds "Zölle".
CREATE VIRTUAL TABLE stories_fts USING fts5(
    title, text,
    content = 'stories', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO stories_fts (rowid, title, text) SELECT id, title, text FROM stories;

CREATE TRIGGER stories_fts_insert AFTER INSERT ON stories BEGIN
    INSERT INTO stories_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
END;
CREATE TRIGGER stories_fts_delete AFTER DELETE ON stories BEGIN
    INSERT INTO stories_fts (stories_fts, rowid, title, text)
    VALUES ('delete', old.id, old.title, old.text);
END;
CREATE TRIGGER stories_fts_update AFTER UPDATE OF title, text ON stories BEGIN
    INSERT INTO stories_fts (stories_fts, rowid, title, text)
    VALUES ('delete', old.id, old.title, old.text);
    INSERT INTO stories_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
END;
