-- The watchlist page in one index range (docs/performance.md).
--
-- Each open watchlist row carries what the page shows of its child, kept current
-- by the child_cases projection whenever it changes, so a page of 1,000 children
-- is one range scan of `watchlist_open` rather than 1,000 look-ups in each of
-- child_summary, watchlist and open_track_steps. Cleared rows keep them null.
alter table watchlist add column upn text;
alter table watchlist add column given_name text;
alter table watchlist add column family_name text;
alter table watchlist add column school_urn text;
alter table watchlist add column destination_urn text;
-- Every open reason of the child with the day it started, ordered by start then
-- reason: [{"reason":"no_destination","since":"2026-09-01"}, ...].
alter table watchlist add column open_reasons text;
-- The earliest deadline of the child's open track steps: overdue before today.
alter table watchlist add column next_due_on text;

-- Fill the open rows exactly as the projector writes them, so a later batch that
-- leaves a child's page columns unchanged has nothing to correct.
update watchlist
   set upn = (select s.upn from child_summary s where s.child_id = watchlist.child_id),
       given_name = (select s.given_name from child_summary s where s.child_id = watchlist.child_id),
       family_name = (select s.family_name from child_summary s where s.child_id = watchlist.child_id),
       school_urn = (select s.school_urn from child_summary s where s.child_id = watchlist.child_id),
       destination_urn = (select s.destination_urn from child_summary s where s.child_id = watchlist.child_id),
       open_reasons = (
           select '[' || group_concat(
                      '{"reason":"' || o.reason || '","since":"' || o.since || '"}', ','
                      order by o.since, o.reason) || ']'
             from watchlist o
            where o.child_id = watchlist.child_id and o.cleared_on is null),
       next_due_on = (
           select min(t.due_on) from open_track_steps t where t.child_id = watchlist.child_id)
 where cleared_on is null
   and exists (select 1 from child_summary s where s.child_id = watchlist.child_id);
