-- The exact-duplicate keys ("url:https://…", "fp:…") were stored as text: long keys landing at
-- random places in their b-tree, repeated in the story index. On a 2,400-feed first pass the two
-- held 37 MB, four times the writer's page cache, and every commit rewrote pages of both.
-- A key is now its 128-bit xxh3 hash (16 bytes). SQL cannot compute xxh3, so the text keys are
-- set aside here and the store hashes them into the new table, then drops them, right after
-- migrating (store::write::rehash_story_keys).
ALTER TABLE story_keys RENAME TO story_keys_text;
DROP INDEX story_keys_story;
CREATE TABLE story_keys (
    key      BLOB PRIMARY KEY,          -- xxh3-128 of the text key, little-endian
    story_id INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX story_keys_story ON story_keys (story_id);
