-- A story's HTML was a copy of its representative entry's, which the entry row keeps anyway:
-- every new story wrote its HTML twice, and every change of representative rewrote it. The
-- story is now read with its representative's HTML (store::read::load_stories). The story
-- keeps its own title and text: search indexes them (stories_fts) and scoring reads them.
ALTER TABLE stories DROP COLUMN html;
