-- The watchlist page in one index range (docs/performance.md).
--
-- Each open watchlist row carries what the page shows of its child, kept current
-- by the child_cases projection whenever it changes, so a page of 1,000 children
-- is one range scan of `watchlist_open` rather than 1,000 look-ups in each of
-- child_summary, watchlist and open_track_steps. Cleared rows keep them null.
alter table watchlist
    add column upn             text,
    add column given_name      text,
    add column family_name     text,
    add column school_urn      text,
    add column destination_urn text,
    -- Every open reason of the child with the day it started, ordered by start
    -- then reason: [{"reason":"no_destination","since":"2026-09-01"}, ...].
    add column open_reasons    text,
    -- The earliest deadline of the child's open track steps: overdue before today.
    add column next_due_on     text;

-- Fill the open rows exactly as the projector writes them, so a later batch that
-- leaves a child's page columns unchanged has nothing to correct.
update watchlist w
   set upn = s.upn,
       given_name = s.given_name,
       family_name = s.family_name,
       school_urn = s.school_urn,
       destination_urn = s.destination_urn,
       open_reasons = (
           select '[' || string_agg(
                      '{"reason":"' || o.reason || '","since":"' || o.since || '"}', ','
                      order by o.since collate "C", o.reason collate "C") || ']'
             from watchlist o
            where o.child_id = w.child_id and o.cleared_on is null),
       next_due_on = (
           select min(t.due_on collate "C") from open_track_steps t where t.child_id = w.child_id)
  from child_summary s
 where s.child_id = w.child_id and w.cleared_on is null;
