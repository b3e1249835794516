-- The watchlist page from the index alone (docs/performance.md): the open-rows
-- index carries the page columns of migration 0004 (SQLite has no INCLUDE, so
-- they extend the key), so a page is read without visiting the table. It
-- replaces `watchlist_open`, whose key it starts with, so every query that used
-- that index can use this one.
create index watchlist_page on watchlist (
    la_code, reason, child_id,
    upn, given_name, family_name, school_urn, destination_urn, open_reasons, next_due_on
) where cleared_on is null;
drop index watchlist_open;
