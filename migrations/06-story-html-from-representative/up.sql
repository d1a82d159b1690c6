-- A story's HTML was a copy of its representative entry's, which the entry row keeps anyway:
-- every new story wrote its HTML twice, and every change of representative rewrote it. The
-- story is now read with its representative's HTML (store::read::load_stories). The story
-- keeps its own title and text: search indexes them (stories_fts) and scoring reads them.
ALTER TABLE stories DROP COLUMN html;

-- Before this release, retention that pruned a story's representative pointed the story at a
-- surviving entry but left the pruned entry's title, link and authors on it. Read with the new
-- representative's HTML, such a story would mix two copies: it takes the title, link and
-- authors of the entry that represents it (the search index follows the title through the
-- update trigger of migration 03).
UPDATE stories SET (title, link, authors) =
    (SELECT title, link, authors FROM entries WHERE entries.id = stories.representative)
 WHERE EXISTS (SELECT 1 FROM entries e
                WHERE e.id = stories.representative
                  AND (e.title IS NOT stories.title OR e.link IS NOT stories.link
                       OR e.authors IS NOT stories.authors));
