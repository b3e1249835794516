-- The watchlist page as an index-only scan (docs/performance.md): the open-rows
-- index carries the page columns of migration 0004, so a page of 1,000 children
-- reads some 30 index pages rather than 1,000 table pages. It replaces
-- `watchlist_open`, whose key it shares, so every query that used that index
-- can use this one.
create index watchlist_page on watchlist (la_code, reason, child_id)
    include (upn, given_name, family_name, school_urn, destination_urn, open_reasons, next_due_on)
    where cleared_on is null;
drop index watchlist_open;
