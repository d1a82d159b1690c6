-- Whether an entry is a title-only copy (no text of its own, or text that only repeats its
-- headline and publisher: a news search's item), as the writer decided when it stored it. A
-- story of such copies alone is folded into the story that a copy with text carrying their
-- headline joins (see `fold_in_title_only_story`). Rows stored before are NULL: not known,
-- so their stories are never folded.
ALTER TABLE entries ADD COLUMN title_only INTEGER;
