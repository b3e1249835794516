-- The watchlist page's copy of the child in one column: see the PostgreSQL
-- migration of the same name. Fields joined by the unit separator, char(31).
alter table watchlist add column page text;

update watchlist
   set page = upn || char(31) || given_name || char(31) || family_name
              || char(31) || ifnull(school_urn, '') || char(31) || ifnull(destination_urn, '')
              || char(31) || open_reasons || char(31) || ifnull(next_due_on, ''),
       upn = null, given_name = null, family_name = null, school_urn = null,
       destination_urn = null, open_reasons = null, next_due_on = null
 where cleared_on is null and upn is not null and open_reasons is not null;

drop index watchlist_page;
create index watchlist_page on watchlist (la_code, reason, child_id, page)
    where cleared_on is null;
