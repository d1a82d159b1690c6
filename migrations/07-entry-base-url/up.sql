-- Entries keep their feed's HTML as the feed gave it and are sanitized when served, with
-- relative URLs resolved then. They resolve against the URL the feed was fetched from, which
-- a redirect (a CDN, a feed proxy, a 301 the config has not caught up with) can make differ
-- from the source's configured URL: that URL is kept here, NULL when it is the configured one.
-- Rows from earlier releases hold HTML already sanitized with absolute URLs.
ALTER TABLE entries ADD COLUMN base_url TEXT;
