-- The initial schema. Times are Unix seconds (UTC). Never edit once landed: add a migration.

-- Facts about this database that outlive any process (e.g. the id namespace of its stories).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- A random namespace for story ids, so a new database never reuses the ids of an old one.
INSERT INTO meta (key, value) VALUES ('instance', lower(hex(randomblob(8))));

-- One row per source name ever configured; removed sources keep their row and their stories.
CREATE TABLE sources (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    url                  TEXT NOT NULL,
    schedule             TEXT NOT NULL,
    in_config            INTEGER NOT NULL DEFAULT 1, -- listed in the current config
    enabled              INTEGER NOT NULL DEFAULT 1, -- config's `enabled`
    disabled_reason      TEXT,                       -- set by us (e.g. 410 Gone); stops polling
    priority             INTEGER NOT NULL DEFAULT 0,
    etag                 TEXT,
    last_modified        TEXT,
    next_due             INTEGER,                    -- NULL: poll as soon as possible
    retry_not_before     INTEGER,                    -- from Retry-After
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_attempt         INTEGER,
    last_outcome         TEXT,                       -- ok | not_modified | <error kind>
    last_error           TEXT,
    last_success         INTEGER,
    last_new_entry       INTEGER,
    moved_to             TEXT                        -- URL a 301/308 pointed to
);

-- A story: the event, told by one or more entries. Ids are AUTOINCREMENT: never reused.
CREATE TABLE stories (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    representative  INTEGER,             -- entries.id whose title/link/text represent the story
    title           TEXT NOT NULL,
    link            TEXT,
    html            TEXT NOT NULL,
    text            TEXT NOT NULL,
    authors         TEXT NOT NULL,       -- JSON array
    published       INTEGER NOT NULL,    -- earliest appearance's publication time
    updated         INTEGER NOT NULL,    -- last time the story's content changed
    first_seen      INTEGER NOT NULL
);
CREATE INDEX stories_published ON stories (published DESC, id DESC);

-- An item as one source published it. Unique on (source, identity): a re-fetch never duplicates.
CREATE TABLE entries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id       INTEGER NOT NULL REFERENCES sources (id),
    identity        TEXT NOT NULL,
    story_id        INTEGER NOT NULL REFERENCES stories (id),
    title           TEXT NOT NULL,
    link            TEXT,
    canonical_url   TEXT,
    authors         TEXT NOT NULL,       -- JSON array
    published       INTEGER NOT NULL,
    updated         INTEGER NOT NULL,
    html            TEXT NOT NULL,
    text            TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    content_hash    TEXT NOT NULL,
    signature       BLOB,                -- near-duplicate signature (cluster module's format)
    evidence        TEXT NOT NULL,       -- why the entry joined its story
    first_seen      INTEGER NOT NULL,
    last_changed    INTEGER NOT NULL,
    UNIQUE (source_id, identity)
);
CREATE INDEX entries_story ON entries (story_id);
CREATE INDEX entries_first_seen ON entries (first_seen);

-- Exact-duplicate keys (`url:<canonical url>`, `fp:<fingerprint>`) → story. The PRIMARY KEY is the
-- dedup guarantee: two copies can never create two stories, however they race.
CREATE TABLE story_keys (
    key      TEXT PRIMARY KEY,
    story_id INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX story_keys_story ON story_keys (story_id);

-- Topic scores of a story with the features that drove them.
CREATE TABLE story_topics (
    story_id INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    topic    TEXT NOT NULL,
    score    REAL NOT NULL,
    matched  INTEGER NOT NULL,
    why      TEXT NOT NULL,              -- JSON array of strings
    PRIMARY KEY (story_id, topic)
) WITHOUT ROWID;
CREATE INDEX story_topics_matched ON story_topics (topic, matched, story_id);

-- Identities pruned by retention: a feed that still lists them must not bring them back as new.
CREATE TABLE tombstones (
    source_id INTEGER NOT NULL,
    identity  TEXT NOT NULL,
    pruned_at INTEGER NOT NULL,
    PRIMARY KEY (source_id, identity)
) WITHOUT ROWID;

-- Every fetch attempt, for the status page and debugging (pruned with retention).
CREATE TABLE fetches (
    id            INTEGER PRIMARY KEY,
    source_id     INTEGER NOT NULL REFERENCES sources (id),
    started_at    INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    outcome       TEXT NOT NULL,
    http_status   INTEGER,
    bytes         INTEGER NOT NULL,
    new_entries   INTEGER NOT NULL,
    updated_entries INTEGER NOT NULL,
    error         TEXT
);
CREATE INDEX fetches_source ON fetches (source_id, started_at);
