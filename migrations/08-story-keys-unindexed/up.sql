-- The index of story keys by story served one statement: the retention prune's delete of
-- the keys of the stories it removes. Every key insert paid for it, and a copy joining an
-- older story put its key on a random page of the index, which each commit wrote to the WAL
-- again. The prune now scans the keys once instead (a few milliseconds per 100,000 keys).
DROP INDEX story_keys_story;
