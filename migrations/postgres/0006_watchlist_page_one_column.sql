-- The watchlist page's copy of the child in one column (docs/performance.md).
--
-- Migration 0004 gave each open watchlist row seven columns copying what the page
-- shows of its child, and 0005 an index carrying them. Returning them as one
-- value, `page`, halves what PostgreSQL does per row of a page (each column is
-- formed and sent on its own) and what the service decodes. Its fields, joined
-- by the unit separator (U+001F, which no identifier, date or name may contain):
--
--   upn, given_name, family_name, school_urn or '', destination_urn or '',
--   open_reasons (as in 0004), next_due_on or ''
--
-- Expand, then contract: the seven columns stay, emptied here and no longer
-- written; a later release drops them. A binary from before this migration
-- finds them null and builds the page the general way (same answer, slower).
alter table watchlist add column page text;

update watchlist
   set page = upn || E'\x1f' || given_name || E'\x1f' || family_name
              || E'\x1f' || coalesce(school_urn, '') || E'\x1f' || coalesce(destination_urn, '')
              || E'\x1f' || open_reasons || E'\x1f' || coalesce(next_due_on, ''),
       upn = null, given_name = null, family_name = null, school_urn = null,
       destination_urn = null, open_reasons = null, next_due_on = null
 where cleared_on is null and upn is not null and open_reasons is not null;

drop index watchlist_page;
create index watchlist_page on watchlist (la_code, reason, child_id)
    include (page)
    where cleared_on is null;
