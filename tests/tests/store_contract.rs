//! The storage contract: the event store and the projector behave the same on
//! PostgreSQL and on SQLite.
//!
//! Each contract is an `async fn` taking a database URL; `both_backends!`
//! turns it into a module with one test per backend (`on_postgres`, which
//! skips when the harness has no PostgreSQL, and `on_sqlite`, on a fresh temp
//! file). A few contracts only make sense on PostgreSQL (transaction ids,
//! postgres-es snapshots) and are plain tests at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use domain::commands::{
    AppealOutcome, ContactMethod, ContactOutcome, HomeVisitOutcome, LocatedOutcome,
};
use domain::values::{Sen, check_letter};
use domain::{CaseServices, ChildCase, ChildCommand, ChildEvent, LaCode, Name, Upn, Urn};
use projections::projector::{self, PROJECTIONS, ProjectorConfig};
use projections::queries::{self, WatchFilter};
use projections::{Actor, BackendKind, CommandContext, Database, PoolSize, Store, StoreError};
use sqlx::Row as _;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};
use uuid::Uuid;

/// One contract, run once per backend.
macro_rules! both_backends {
    ($($contract:ident),* $(,)?) => {$(
        mod $contract {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_postgres() {
                let Some(db) = rollcall_tests::pg::fresh_database().await else {
                    return;
                };
                super::$contract(&db.url).await;
                db.drop_database().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_sqlite() {
                let (url, _file) = rollcall_tests::sqlite::fresh_sqlite_url();
                super::$contract(&url).await;
            }
        }
    )*};
}

both_backends!(
    a_command_appends_events_with_actor_metadata_and_replay_can_look_back_in_time,
    the_events_table_refuses_updates_deletes_and_truncation,
    an_idempotency_key_replays_the_first_outcome_and_refuses_a_different_command,
    a_stale_expected_version_is_a_version_conflict_and_appends_nothing,
    a_upn_is_registered_once_even_when_two_registrations_race,
    replacing_a_upn_with_a_taken_one_is_refused_after_the_scope_check,
    racing_commands_on_one_child_leave_a_gapless_log,
    the_background_projector_applies_every_event_exactly_once_under_concurrent_appends,
    a_projector_aborted_mid_batch_recovers_to_exactly_what_a_rebuild_produces,
    a_rebuild_reproduces_the_live_read_models_and_the_watchlist_follows_the_story,
    a_pipelined_catch_up_aborted_anywhere_ends_as_one_event_per_transaction_would,
    migration_0006_writes_the_page_as_the_projector_does,
);

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const LA: &str = "330";
const PRIMARY: &str = "100009";
const SCHOOL_A: &str = "100001";
const SCHOOL_B: &str = "100002";
const SCHOOL_C: &str = "100003";

fn day(raw: &str) -> NaiveDate {
    raw.parse().expect("test dates are valid ISO dates")
}

/// The day every command in these tests is decided on.
fn today() -> NaiveDate {
    day("2026-09-10")
}

fn services() -> CaseServices {
    CaseServices::on(today())
}

fn urn(raw: &str) -> Urn {
    Urn::parse(raw).expect("test URNs are six digits")
}

/// A valid, permanent UPN, distinct for each `n`.
fn upn(n: u32) -> Upn {
    let body = format!("80120{n:07}");
    let letter = char::from(check_letter(body.as_bytes()));
    Upn::parse(&format!("{letter}{body}")).expect("the check letter was computed for this body")
}

fn name(raw: &str) -> Name {
    Name::parse(raw).expect("test names are valid")
}

fn register(n: u32) -> ChildCommand {
    ChildCommand::RegisterChild {
        upn: upn(n),
        given_name: name("Amy"),
        family_name: name("Example"),
        date_of_birth: day("2015-05-01"),
        la_code: LaCode::parse(LA).expect("a three-digit LA code"),
        school_urn: Some(urn(PRIMARY)),
        year_group: Some(6),
        sen: None,
    }
}

fn actor() -> Actor {
    Actor {
        name: "officer-1".to_owned(),
        role: "la".to_owned(),
        org: LA.to_owned(),
    }
}

fn context() -> CommandContext {
    CommandContext {
        actor: actor(),
        request_id: Uuid::new_v4().to_string(),
        idempotency_key: None,
        expected_version: None,
    }
}

fn contact_attempt(made_on: Option<&str>) -> ChildCommand {
    ChildCommand::LogContactAttempt {
        method: ContactMethod::Phone,
        outcome: ContactOutcome::NoAnswer,
        notes: "rang twice".to_owned(),
        made_on: made_on.map(day),
    }
}

fn home_visit(on: &str) -> ChildCommand {
    ChildCommand::LogHomeVisit {
        visited_on: day(on),
        outcome: HomeVisitOutcome::NoAnswer,
        notes: "no one home".to_owned(),
    }
}

fn change_destination(to: &str) -> ChildCommand {
    ChildCommand::ChangeDestination {
        school_urn: urn(to),
        reason: "the family moved".to_owned(),
    }
}

/// The commands after registration of one of five realistic stories; every
/// one is valid in order on [`today`].
fn story(variant: usize) -> Vec<ChildCommand> {
    use ChildCommand as C;
    match variant % 5 {
        // No place, then allocated, confirmed and moved elsewhere.
        0 => vec![
            C::RecordNoAllocation {},
            C::AllocatePupil {
                school_urn: urn(SCHOOL_A),
            },
            C::ConfirmDestination {
                school_urn: urn(SCHOOL_A),
            },
            change_destination(SCHOOL_B),
            contact_attempt(None),
        ],
        // Appeal upheld (two events), then moved and information shared.
        1 => vec![
            C::LodgeAppeal {
                school_urn: urn(SCHOOL_A),
            },
            C::DecideAppeal {
                school_urn: urn(SCHOOL_A),
                outcome: AppealOutcome::Upheld,
            },
            change_destination(SCHOOL_B),
            C::ShareTransitionInfo {
                school_urn: urn(SCHOOL_B),
                sen: Some(Sen::K),
                semh: true,
                safeguarding: false,
                summary: "settles well with a named adult".to_owned(),
                strategies: "quiet space at lunch".to_owned(),
            },
        ],
        // Day-one no-show, enquiries, then the child arrives.
        2 => vec![
            C::AllocatePupil {
                school_urn: urn(SCHOOL_A),
            },
            C::RecordNoShow {
                school_urn: urn(SCHOOL_A),
                date: day("2026-09-03"),
            },
            contact_attempt(Some("2026-09-03")),
            home_visit("2026-09-04"),
            C::RecordArrival {
                school_urn: urn(SCHOOL_A),
                date: day("2026-09-07"),
            },
        ],
        // Missing, enquiries, referral accepted, located.
        3 => vec![
            C::ReportChildMissing {
                since: day("2026-09-01"),
                circumstances: "not seen since the summer".to_owned(),
            },
            contact_attempt(Some("2026-09-02")),
            home_visit("2026-09-03"),
            C::RaiseCmeReferral {
                reason: "no contact after enquiries".to_owned(),
                override_reason: None,
            },
            C::AcceptCmeReferral {
                notes: "case opened".to_owned(),
            },
            C::RecordChildLocated {
                outcome: LocatedOutcome::OnRoll,
                school_urn: Some(urn(SCHOOL_B)),
                la_code: None,
                notes: "found on roll".to_owned(),
            },
        ],
        // Allocated, appeal dismissed, moved, contacts.
        _ => vec![
            C::AllocatePupil {
                school_urn: urn(SCHOOL_A),
            },
            C::LodgeAppeal {
                school_urn: urn(SCHOOL_B),
            },
            C::DecideAppeal {
                school_urn: urn(SCHOOL_B),
                outcome: AppealOutcome::Dismissed,
            },
            change_destination(SCHOOL_C),
            contact_attempt(None),
            contact_attempt(Some("2026-09-09")),
        ],
    }
}

async fn open(url: &str) -> (Database, Store) {
    let db = Database::connect(url, PoolSize::default())
        .await
        .expect("the test database accepts connections");
    db.migrate()
        .await
        .expect("migrations apply to a fresh database");
    let store = Store::new(db.clone());
    (db, store)
}

async fn execute(store: &Store, child: Uuid, command: ChildCommand) -> projections::Outcome {
    let name = command.name();
    store
        .execute(child, command, &context(), &services())
        .await
        .unwrap_or_else(|error| panic!("{name} on child {child} failed: {error}"))
}

/// Registers child `n` and runs its story; returns its id.
async fn register_and_tell(store: &Store, n: u32) -> Uuid {
    let child = Uuid::new_v4();
    execute(store, child, register(n)).await;
    for command in story(n as usize) {
        execute(store, child, command).await;
    }
    child
}

async fn scalar(db: &Database, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(db.any())
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

async fn count_events(db: &Database) -> i64 {
    scalar(db, "select count(*) from events").await
}

/// The log position column: the identity on PostgreSQL, the rowid on SQLite.
fn position_column(db: &Database) -> &'static str {
    match db.kind() {
        BackendKind::Postgres => "global_position",
        BackendKind::Sqlite => "rowid",
    }
}

async fn sequences_of(db: &Database, child: Uuid) -> Vec<i64> {
    sqlx::query_scalar("select sequence from events where aggregate_id = $1 order by sequence")
        .bind(child.to_string())
        .fetch_all(db.any())
        .await
        .expect("read a child's sequences")
}

/// Every projection table and the columns of its primary key.
fn projection_tables() -> Vec<(&'static str, &'static str)> {
    PROJECTIONS
        .iter()
        .flat_map(|name| projector::tables_of(name).iter())
        .map(|table| {
            let key = match *table {
                "child_summary" | "incoming_cohort" => "child_id",
                "child_upns" => "upn",
                "watchlist" => "child_id, reason, opened_position",
                "open_track_steps" => "child_id, track, step",
                "transition_info" => "child_id, school_urn",
                "day_one_no_shows" => "child_id, school_urn, date",
                "destination_changes" | "timeline" => "position",
                other => panic!("no primary key known for projection table {other}"),
            };
            (*table, key)
        })
        .collect()
}

async fn dump_all(db: &Database) -> BTreeMap<&'static str, Vec<String>> {
    let mut dump = BTreeMap::new();
    for (table, key) in projection_tables() {
        let rows = queries::dump_table(db, table, key)
            .await
            .unwrap_or_else(|error| panic!("dump {table}: {error}"));
        dump.insert(table, rows);
    }
    dump
}

/// Asserts two dumps are equal table by table, naming the first differing row.
fn assert_same_tables(
    live: &BTreeMap<&'static str, Vec<String>>,
    rebuilt: &BTreeMap<&'static str, Vec<String>>,
) {
    for (table, rows) in live {
        let other = &rebuilt[table];
        for (index, (left, right)) in rows.iter().zip(other).enumerate() {
            assert_eq!(
                left, right,
                "{table} row {index} differs between live and rebuilt"
            );
        }
        assert_eq!(
            rows.len(),
            other.len(),
            "{table} has {} live rows but {} after a rebuild",
            rows.len(),
            other.len()
        );
    }
}

/// Rebuilds every projection from the log.
async fn rebuild_all(db: &Database) {
    wait_for_projector_locks_released(db).await;
    for name in PROJECTIONS {
        let rebuilt = projector::rebuild(db, name, 1000)
            .await
            .unwrap_or_else(|error| panic!("rebuild {name}: {error}"));
        // The tests' role owns its database: on PostgreSQL, fresh tables.
        assert_eq!(
            rebuilt.in_place.is_none(),
            db.kind() == BackendKind::Postgres,
            "how {name} was rebuilt: {:?}",
            rebuilt.in_place
        );
    }
}

/// On PostgreSQL a projector holds an advisory lock on a dedicated
/// connection; after it stops, the server releases the lock once it notices
/// the connection closed. `rebuild` treats a held lock as "a running serve
/// will catch up", so wait until no lock is left before rebuilding.
async fn wait_for_projector_locks_released(db: &Database) {
    if db.kind() != BackendKind::Postgres {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = scalar(
            db,
            "select count(*) from pg_locks where locktype = 'advisory' \
             and database = (select oid from pg_database where datname = current_database())",
        )
        .await;
        if held == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{held} projector locks are still held"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until every projection has no lag; panics on a projection error or
/// after two minutes.
async fn wait_until_caught_up(db: &Database) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let statuses = projector::status(db).await.expect("projection status");
        for status in &statuses {
            assert!(status.error.is_none(), "projection failed: {status:?}");
        }
        if statuses.iter().all(|status| status.lag_events == 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "projectors did not catch up: {statuses:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// Whether every projection has applied everything visible in the log.
async fn nothing_lags(db: &Database) -> bool {
    projector::status(db)
        .await
        .expect("projection status")
        .iter()
        .all(|status| status.lag_events == 0)
}

/// Catches every projection up in the foreground. On PostgreSQL a
/// transaction elsewhere in the cluster (another test) can briefly hold the
/// reading horizon back, so retry until nothing lags.
async fn catch_up_all(db: &Database, batch: i64) {
    catch_up_all_in_chunks(db, batch, batch).await;
}

/// [`catch_up_all`], reading the log in chunks of at most `chunk` events.
async fn catch_up_all_in_chunks(db: &Database, batch: i64, chunk: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for name in PROJECTIONS {
            projector::catch_up_in_chunks(db, name, batch, chunk)
                .await
                .unwrap_or_else(|error| panic!("catch up {name}: {error}"));
        }
        let statuses = projector::status(db).await.expect("projection status");
        if statuses.iter().all(|status| status.lag_events == 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "projections did not catch up: {statuses:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// The invariants of a fully caught-up projector: every event projected
/// exactly once.
async fn assert_every_event_projected_once(db: &Database) {
    let events = count_events(db).await;
    assert!(events > 0);
    assert_eq!(
        scalar(db, "select count(*) from timeline").await,
        events,
        "one timeline row per event"
    );
    let position = position_column(db);
    assert_eq!(
        scalar(
            db,
            "select cast(coalesce(sum(position), 0) as bigint) from timeline"
        )
        .await,
        scalar(
            db,
            &format!("select cast(coalesce(sum({position}), 0) as bigint) from events")
        )
        .await,
        "the timeline holds exactly the log's positions"
    );
    assert_eq!(
        scalar(db, "select count(*) from destination_changes").await,
        scalar(
            db,
            "select count(*) from events where event_type = 'DestinationChanged'"
        )
        .await,
        "one destination_changes row per DestinationChanged"
    );
    for status in projector::status(db).await.expect("projection status") {
        assert_eq!(
            status.events_applied, events,
            "{} applied each event once",
            status.name
        );
    }
    let heads: BTreeMap<String, i64> =
        sqlx::query("select aggregate_id, max(sequence) as head from events group by aggregate_id")
            .fetch_all(db.any())
            .await
            .expect("read each child's head")
            .iter()
            .map(|row| (row.get("aggregate_id"), row.get("head")))
            .collect();
    let versions: BTreeMap<String, i64> =
        sqlx::query("select child_id, version from child_summary")
            .fetch_all(db.any())
            .await
            .expect("read summaries")
            .iter()
            .map(|row| (row.get("child_id"), row.get("version")))
            .collect();
    assert_eq!(
        versions, heads,
        "each child_summary.version is its child's last sequence"
    );
}

/// A small deterministic generator, so a failing run can be repeated.
fn next_random(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

// ---------------------------------------------------------------------------
// Contracts on both backends
// ---------------------------------------------------------------------------

async fn a_command_appends_events_with_actor_metadata_and_replay_can_look_back_in_time(url: &str) {
    let (db, store) = open(url).await;
    let child = Uuid::new_v4();
    let before_anything = Utc::now();
    sleep(Duration::from_millis(10)).await;

    let registered = execute(&store, child, register(1)).await;
    assert_eq!(registered.child_id, child);
    assert_eq!(registered.version, 1);
    assert!(!registered.replayed);
    assert_eq!(registered.events.len(), 1);
    assert_eq!(registered.events[0].sequence, 1);
    assert!(matches!(
        registered.events[0].event,
        ChildEvent::ChildRegistered { .. }
    ));

    // SQLite records milliseconds: leave clear water either side of the cut.
    sleep(Duration::from_millis(10)).await;
    let between = Utc::now();
    sleep(Duration::from_millis(10)).await;

    let context = CommandContext {
        actor: Actor {
            name: "head-of-year".to_owned(),
            role: "school".to_owned(),
            org: PRIMARY.to_owned(),
        },
        request_id: "req-42".to_owned(),
        idempotency_key: None,
        expected_version: None,
    };
    let allocated = store
        .execute(
            child,
            ChildCommand::AllocatePupil {
                school_urn: urn(SCHOOL_A),
            },
            &context,
            &services(),
        )
        .await
        .expect("allocation is accepted");
    assert_eq!(allocated.version, 2);
    assert_eq!(allocated.events[0].sequence, 2);

    let history = store.history(child, None).await.expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(
        history
            .iter()
            .map(|entry| entry.sequence)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(history[0].event_type, "ChildRegistered");
    assert_eq!(history[1].event_type, "PupilAllocated");
    assert!(history[0].position < history[1].position);
    assert_eq!(history[0].metadata["actor_name"], "officer-1");
    assert_eq!(history[0].metadata["actor_role"], "la");
    assert_eq!(history[0].metadata["actor_org"], LA);
    assert_eq!(history[0].metadata["command"], "RegisterChild");
    assert_eq!(history[1].metadata["actor_name"], "head-of-year");
    assert_eq!(history[1].metadata["actor_role"], "school");
    assert_eq!(history[1].metadata["actor_org"], PRIMARY);
    assert_eq!(history[1].metadata["request_id"], "req-42");
    assert_eq!(history[1].metadata["command"], "AllocatePupil");
    let stored: ChildEvent =
        serde_json::from_value(history[1].data.clone()).expect("history data is an event");
    assert_eq!(stored, allocated.events[0].event);

    let (now, full) = store.replay(child, None).await.expect("replay");
    assert_eq!(full, history);
    assert_eq!(now.version, 2);
    assert_eq!(now.destination_urn, Some(urn(SCHOOL_A)));

    let (then, partial) = store
        .replay(child, Some(between))
        .await
        .expect("as-of replay");
    assert_eq!(
        partial.len(),
        1,
        "only the registration was recorded by then"
    );
    assert_eq!(partial[0], history[0]);
    assert_eq!(then.version, 1);
    assert!(then.is_registered());
    assert_eq!(then.destination_urn, None);

    // The recorded_at the API shows is itself a valid as-of: the entry is included.
    let first_recorded: DateTime<Utc> = history[0]
        .recorded_at
        .parse()
        .expect("recorded_at is RFC 3339");
    let (at_first, upto_first) = store
        .replay(child, Some(first_recorded))
        .await
        .expect("as-of replay at the first event");
    assert_eq!(
        upto_first.len(),
        1,
        "as of its own recorded_at, an event is included"
    );
    assert_eq!(at_first.version, 1);

    let (empty, none) = store
        .replay(child, Some(before_anything))
        .await
        .expect("as-of replay before the child existed");
    assert!(none.is_empty());
    assert_eq!(empty, ChildCase::default());
    db.close().await;
}

async fn the_events_table_refuses_updates_deletes_and_truncation(url: &str) {
    let (db, store) = open(url).await;
    let child = register_and_tell(&store, 1).await;
    let before = store.history(child, None).await.expect("history");
    let events = count_events(&db).await;

    let update = sqlx::query("update events set event_type = 'Tampered' where sequence = 1")
        .execute(db.any())
        .await;
    assert!(update.is_err(), "UPDATE on events must fail: {update:?}");
    let delete = sqlx::query("delete from events").execute(db.any()).await;
    assert!(delete.is_err(), "DELETE on events must fail: {delete:?}");
    if db.kind() == BackendKind::Postgres {
        let truncate = sqlx::query("truncate events").execute(db.any()).await;
        assert!(
            truncate.is_err(),
            "TRUNCATE on events must fail: {truncate:?}"
        );
    }

    assert_eq!(count_events(&db).await, events);
    assert_eq!(store.history(child, None).await.expect("history"), before);
    db.close().await;
}

async fn an_idempotency_key_replays_the_first_outcome_and_refuses_a_different_command(url: &str) {
    let (db, store) = open(url).await;
    let keyed = |key: &str| CommandContext {
        idempotency_key: Some(key.to_owned()),
        ..context()
    };

    // A registration retried with its key (even under a new id) is the first one.
    let child = Uuid::new_v4();
    let first = store
        .execute(child, register(1), &keyed("register-1"), &services())
        .await
        .expect("registration");
    let again = store
        .execute(
            Uuid::new_v4(),
            register(1),
            &keyed("register-1"),
            &services(),
        )
        .await
        .expect("a retried registration is not an error");
    assert!(again.replayed);
    assert_eq!(again.child_id, child);
    assert_eq!(again.events, first.events);
    assert_eq!(count_events(&db).await, 1);

    let logged = store
        .execute(
            child,
            contact_attempt(None),
            &keyed("contact-1"),
            &services(),
        )
        .await
        .expect("contact attempt");
    assert!(!logged.replayed);
    let events = count_events(&db).await;
    let replayed = store
        .execute(
            child,
            contact_attempt(None),
            &keyed("contact-1"),
            &services(),
        )
        .await
        .expect("a retried command is not an error");
    assert!(replayed.replayed);
    assert_eq!(replayed.child_id, logged.child_id);
    assert_eq!(replayed.version, logged.version);
    assert_eq!(replayed.events, logged.events);
    assert_eq!(count_events(&db).await, events, "a replay appends nothing");

    let reused = store
        .execute(
            child,
            home_visit("2026-09-09"),
            &keyed("contact-1"),
            &services(),
        )
        .await;
    assert!(
        matches!(reused, Err(StoreError::IdempotencyKeyReused)),
        "{reused:?}"
    );
    assert_eq!(count_events(&db).await, events);
    db.close().await;
}

async fn a_stale_expected_version_is_a_version_conflict_and_appends_nothing(url: &str) {
    let (db, store) = open(url).await;
    let child = Uuid::new_v4();
    execute(&store, child, register(1)).await;
    execute(&store, child, contact_attempt(None)).await;
    let events = count_events(&db).await;

    let stale = CommandContext {
        expected_version: Some(1),
        ..context()
    };
    let refused = store
        .execute(child, contact_attempt(None), &stale, &services())
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::VersionConflict {
                expected: 1,
                actual: 2
            })
        ),
        "{refused:?}"
    );
    assert_eq!(count_events(&db).await, events);

    let current = CommandContext {
        expected_version: Some(2),
        ..context()
    };
    let accepted = store
        .execute(child, contact_attempt(None), &current, &services())
        .await
        .expect("the current version is accepted");
    assert_eq!(accepted.version, 3);
    db.close().await;
}

async fn replacing_a_upn_with_a_taken_one_is_refused_after_the_scope_check(url: &str) {
    let (db, store) = open(url).await;
    let taken = register_and_tell(&store, 1).await;
    let temporary = Uuid::new_v4();
    let mut command = register(2);
    if let ChildCommand::RegisterChild { upn, .. } = &mut command {
        // A temporary UPN: a letter in place of the last serial digit.
        let body = "80120000000A";
        let letter = char::from(check_letter(body.as_bytes()));
        *upn = Upn::parse(&format!("{letter}{body}")).expect("a valid temporary UPN");
    }
    execute(&store, temporary, command).await;
    let before = count_events(&db).await;
    let replace = || ChildCommand::ReplaceUpn { new_upn: upn(1) };

    // Out of scope: the caller learns nothing about the UPN.
    let hidden = store
        .execute_authorized(temporary, replace(), &context(), &services(), |_| false)
        .await;
    assert!(
        matches!(hidden, Err(StoreError::UnknownChild)),
        "{hidden:?}"
    );

    // In scope: the unique index refuses the append, and the error says why.
    let duplicate = store
        .execute(temporary, replace(), &context(), &services())
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::DuplicateUpn)),
        "{duplicate:?}"
    );
    assert_eq!(count_events(&db).await, before, "nothing was appended");
    assert_ne!(taken, temporary);
}

async fn a_upn_is_registered_once_even_when_two_registrations_race(url: &str) {
    let (db, store) = open(url).await;
    execute(&store, Uuid::new_v4(), register(1)).await;
    let duplicate = store
        .execute(Uuid::new_v4(), register(1), &context(), &services())
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::DuplicateUpn)),
        "{duplicate:?}"
    );
    assert_eq!(count_events(&db).await, 1);

    let store = Arc::new(store);
    for n in 2..12 {
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .execute(Uuid::new_v4(), register(n), &context(), &services())
                        .await
                })
            })
            .collect();
        let mut winners = 0;
        for racer in racers {
            match racer.await.expect("the registration task did not panic") {
                Ok(outcome) => {
                    assert!(!outcome.replayed);
                    winners += 1;
                }
                Err(StoreError::DuplicateUpn) => {}
                Err(other) => panic!("a losing registration must be DuplicateUpn, not {other:?}"),
            }
        }
        assert_eq!(
            winners,
            1,
            "exactly one registration of UPN {} wins",
            upn(n)
        );
        assert!(
            store
                .upn_owner(upn(n).as_str())
                .await
                .expect("upn owner")
                .is_some()
        );
    }
    assert_eq!(count_events(&db).await, 11);
    db.close().await;
}

async fn racing_commands_on_one_child_leave_a_gapless_log(url: &str) {
    let (db, store) = open(url).await;
    let store = Arc::new(store);
    let child = Uuid::new_v4();
    execute(&store, child, register(1)).await;

    let mut successes = 0;
    let mut conflicts = 0;
    for _round in 0..3 {
        let racers: Vec<_> = (0..12)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .execute(child, contact_attempt(None), &context(), &services())
                        .await
                })
            })
            .collect();
        for racer in racers {
            match racer.await.expect("the command task did not panic") {
                Ok(_) => successes += 1,
                Err(StoreError::Conflict) => conflicts += 1,
                Err(other) => panic!("a racing command must succeed or conflict, not {other:?}"),
            }
        }
    }
    assert!(successes > 0);
    let sequences = sequences_of(&db, child).await;
    let expected: Vec<i64> = (1..=1 + successes).collect();
    assert_eq!(sequences, expected, "sequences 1..=n, no gap, no duplicate");
    println!("{successes} appended, {conflicts} conflicted");
    db.close().await;
}

async fn the_background_projector_applies_every_event_exactly_once_under_concurrent_appends(
    url: &str,
) {
    let (db, store) = open(url).await;
    let store = Arc::new(store);
    let (stop, stopped) = watch::channel(false);
    let config = ProjectorConfig {
        batch_size: 7,
        poll_interval: Duration::from_millis(20),
    };
    let projectors: Vec<_> = PROJECTIONS
        .iter()
        .map(|name| tokio::spawn(projector::run(db.clone(), name, config, stopped.clone())))
        .collect();

    const WRITERS: u32 = 8;
    const CHILDREN: u32 = 50;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mine: Vec<(u32, Uuid)> = (0..CHILDREN)
                    .filter(|n| n % WRITERS == writer)
                    .map(|n| (n, Uuid::new_v4()))
                    .collect();
                for (n, child) in &mine {
                    execute(&store, *child, register(*n)).await;
                }
                // Step through the stories round-robin, so each writer's
                // children interleave with every other writer's.
                let stories: Vec<Vec<ChildCommand>> =
                    mine.iter().map(|(n, _)| story(*n as usize)).collect();
                let longest = stories.iter().map(Vec::len).max().unwrap_or(0);
                for step in 0..longest {
                    for ((_, child), commands) in mine.iter().zip(&stories) {
                        if let Some(command) = commands.get(step) {
                            execute(&store, *child, command.clone()).await;
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a writer task did not panic");
    }

    wait_until_caught_up(&db).await;
    stop.send(true).expect("the projectors are listening");
    for projector in projectors {
        tokio::time::timeout(Duration::from_secs(30), projector)
            .await
            .expect("a projector stops promptly when told")
            .expect("a projector task did not panic");
    }

    assert_eq!(
        scalar(&db, "select count(*) from child_summary").await,
        i64::from(CHILDREN)
    );
    assert_every_event_projected_once(&db).await;
    db.close().await;
}

async fn a_projector_aborted_mid_batch_recovers_to_exactly_what_a_rebuild_produces(url: &str) {
    let (db, store) = open(url).await;
    let mut n = 0;
    for _ in 0..25 {
        register_and_tell(&store, n).await;
        n += 1;
    }

    let (stop, stopped) = watch::channel(false);
    let config = ProjectorConfig {
        batch_size: 3,
        poll_interval: Duration::from_millis(5),
    };
    let mut seed = 0x5eed_u64;
    let mut interrupted = 0;
    // At least 20 rounds, and on until one was cut off mid-way (how far a
    // round gets depends on the machine's speed and load).
    for round in 0..200 {
        if round >= 20 && interrupted > 0 {
            break;
        }
        if round % 4 == 3 || nothing_lags(&db).await {
            // More log to read, so later rounds are interrupted mid-way too.
            for _ in 0..5 {
                register_and_tell(&store, n).await;
                n += 1;
            }
        }
        let projectors: Vec<_> = PROJECTIONS
            .iter()
            .map(|name| tokio::spawn(projector::run(db.clone(), name, config, stopped.clone())))
            .collect();
        sleep(Duration::from_millis(1 + next_random(&mut seed) % 25)).await;
        for projector in &projectors {
            projector.abort();
        }
        for projector in projectors {
            let ended = projector.await;
            assert!(
                ended.as_ref().is_err_and(|error| error.is_cancelled()),
                "a running projector only ends when aborted: {ended:?}"
            );
        }
        let statuses = projector::status(&db).await.expect("projection status");
        for status in &statuses {
            assert!(status.error.is_none(), "projection failed: {status:?}");
        }
        if statuses
            .iter()
            .any(|status| status.lag_events > 0 && status.events_applied > 0)
        {
            interrupted += 1;
        }
    }
    assert!(
        interrupted > 0,
        "at least one abort came mid-way through the log"
    );

    let projectors: Vec<_> = PROJECTIONS
        .iter()
        .map(|name| tokio::spawn(projector::run(db.clone(), name, config, stopped.clone())))
        .collect();
    wait_until_caught_up(&db).await;
    stop.send(true).expect("the projectors are listening");
    for projector in projectors {
        projector.await.expect("a projector task did not panic");
    }
    assert_every_event_projected_once(&db).await;

    let recovered = dump_all(&db).await;
    rebuild_all(&db).await;
    let rebuilt = dump_all(&db).await;
    assert_same_tables(&recovered, &rebuilt);
    db.close().await;
}

/// `catch_up` reads in chunks on one task, folds on another and writes on a third.
/// Aborted at random moments (a write in flight, a read half done) and then finished,
/// with transactions spanning several reads, it leaves exactly the tables that applying
/// the log one event per transaction leaves.
async fn a_pipelined_catch_up_aborted_anywhere_ends_as_one_event_per_transaction_would(url: &str) {
    let (db, store) = open(url).await;
    for n in 0..40 {
        register_and_tell(&store, n).await;
    }
    let events = count_events(&db).await;
    assert!(events > 200, "a log longer than many chunks: {events}");

    let mut seed = 0xcafe_u64;
    let mut interrupted = 0;
    let mut n = 40;
    // At least 12 rounds, and on until one was cut off mid-way.
    for round in 0..200 {
        if round >= 12 && interrupted > 0 {
            break;
        }
        if nothing_lags(&db).await {
            for _ in 0..5 {
                register_and_tell(&store, n).await;
                n += 1;
            }
        }
        for name in PROJECTIONS {
            let run = tokio::spawn({
                let db = db.clone();
                async move { projector::catch_up_in_chunks(&db, name, 23, 4).await }
            });
            sleep(Duration::from_millis(next_random(&mut seed) % 15)).await;
            run.abort();
            if let Ok(finished) = run.await {
                finished.unwrap_or_else(|error| panic!("catch up {name}: {error}"));
            }
        }
        let statuses = projector::status(&db).await.expect("projection status");
        if statuses.iter().any(|status| status.lag_events > 0) {
            interrupted += 1;
        }
    }
    assert!(
        interrupted > 0,
        "at least one abort came mid-way through the log"
    );
    catch_up_all_in_chunks(&db, 23, 4).await;
    assert_every_event_projected_once(&db).await;
    let pipelined = dump_all(&db).await;

    for name in PROJECTIONS {
        projector::reset(&db, name).await.expect("reset");
        while projector::run_once(&db, name, 1)
            .await
            .expect("apply one event")
            > 0
        {}
    }
    let one_at_a_time = dump_all(&db).await;
    assert_same_tables(&pipelined, &one_at_a_time);
    db.close().await;
}

/// The watchlist reasons of one child (overdue steps included), sorted; `None`
/// when the child is not on the watchlist.
async fn watch_reasons(db: &Database, child: Uuid, today: &str) -> Option<Vec<String>> {
    let items = queries::watchlist(
        db,
        &WatchFilter {
            la_code: Some(LA.to_owned()),
            reason: None,
            today: today.to_owned(),
            after: None,
            limit: 1000,
        },
    )
    .await
    .expect("watchlist query");
    items
        .into_iter()
        .find(|item| item.child_id == child.to_string())
        .map(|item| {
            let mut reasons = item.reasons;
            reasons.sort();
            reasons
        })
}

fn list(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|item| (*item).to_owned()).collect())
}

async fn a_rebuild_reproduces_the_live_read_models_and_the_watchlist_follows_the_story(url: &str) {
    use ChildCommand as C;
    let (db, store) = open(url).await;
    let now = today().to_string();
    // Live: the projector runs after every command, as `serve` does.
    let step = |child: Uuid, command: ChildCommand| {
        let (db, store) = (&db, &store);
        async move {
            execute(store, child, command).await;
            catch_up_all(db, 1000).await;
        }
    };
    let reasons = |child: Uuid, today: String| {
        let db = &db;
        async move { watch_reasons(db, child, &today).await }
    };

    // No place, then allocated.
    let no_place = Uuid::new_v4();
    step(no_place, register(1)).await;
    assert_eq!(reasons(no_place, now.clone()).await, None);
    step(no_place, C::RecordNoAllocation {}).await;
    assert_eq!(
        reasons(no_place, now.clone()).await,
        list(&["no_destination"])
    );
    step(
        no_place,
        C::AllocatePupil {
            school_urn: urn(SCHOOL_A),
        },
    )
    .await;
    assert_eq!(reasons(no_place, now.clone()).await, None);

    // Appeal lodged, then decided.
    let appealing = Uuid::new_v4();
    step(appealing, register(2)).await;
    step(
        appealing,
        C::LodgeAppeal {
            school_urn: urn(SCHOOL_B),
        },
    )
    .await;
    assert_eq!(
        reasons(appealing, now.clone()).await,
        list(&["appeal_pending", "no_destination"])
    );
    step(
        appealing,
        C::DecideAppeal {
            school_urn: urn(SCHOOL_B),
            outcome: AppealOutcome::Upheld,
        },
    )
    .await;
    assert_eq!(reasons(appealing, now.clone()).await, None);

    // A day-one no-show opens the CME track; the arrival closes both.
    let no_show = Uuid::new_v4();
    step(no_show, register(3)).await;
    step(
        no_show,
        C::AllocatePupil {
            school_urn: urn(SCHOOL_A),
        },
    )
    .await;
    step(
        no_show,
        C::RecordNoShow {
            school_urn: urn(SCHOOL_A),
            date: day("2026-09-03"),
        },
    )
    .await;
    let calendar = &services().calendar;
    let referral_due = calendar.add_school_days(day("2026-09-03"), 10);
    assert_eq!(
        reasons(no_show, now.clone()).await,
        list(&["day_one_no_show"])
    );
    assert_eq!(
        reasons(
            no_show,
            referral_due.succ_opt().expect("a date").to_string()
        )
        .await,
        list(&["day_one_no_show", "overdue_track_step"])
    );
    step(
        no_show,
        C::RecordArrival {
            school_urn: urn(SCHOOL_A),
            date: day("2026-09-07"),
        },
    )
    .await;
    assert_eq!(reasons(no_show, "2026-12-01".to_owned()).await, None);

    // Missing, referred, accepted, located.
    let missing = Uuid::new_v4();
    step(missing, register(4)).await;
    step(
        missing,
        C::ReportChildMissing {
            since: day("2026-09-01"),
            circumstances: "not seen since the summer".to_owned(),
        },
    )
    .await;
    assert_eq!(
        reasons(missing, now.clone()).await,
        list(&["reported_missing"])
    );
    step(missing, contact_attempt(Some("2026-09-02"))).await;
    step(missing, home_visit("2026-09-03")).await;
    step(
        missing,
        C::RaiseCmeReferral {
            reason: "no contact after enquiries".to_owned(),
            override_reason: None,
        },
    )
    .await;
    assert_eq!(
        reasons(missing, now.clone()).await,
        list(&["cme_referral_open", "reported_missing"])
    );
    step(
        missing,
        C::AcceptCmeReferral {
            notes: "case opened".to_owned(),
        },
    )
    .await;
    step(
        missing,
        C::RecordChildLocated {
            outcome: LocatedOutcome::OnRoll,
            school_urn: Some(urn(SCHOOL_B)),
            la_code: None,
            notes: "found on roll".to_owned(),
        },
    )
    .await;
    assert_eq!(reasons(missing, "2026-12-01".to_owned()).await, None);

    // Missing and left alone: the referral step goes overdue, strictly after its due date.
    let left_alone = Uuid::new_v4();
    step(left_alone, register(5)).await;
    step(
        left_alone,
        C::ReportChildMissing {
            since: day("2026-09-01"),
            circumstances: "family not answering".to_owned(),
        },
    )
    .await;
    let due = calendar.add_school_days(day("2026-09-01"), 10);
    assert_eq!(
        reasons(left_alone, due.to_string()).await,
        list(&["reported_missing"])
    );
    assert_eq!(
        reasons(left_alone, due.succ_opt().expect("a date").to_string()).await,
        list(&["overdue_track_step", "reported_missing"])
    );

    // A destination change and shared information, for the report tables.
    let moving = Uuid::new_v4();
    step(moving, register(6)).await;
    for command in story(1) {
        step(moving, command).await;
    }
    let changes = queries::destination_changes(&db, Some(LA), None, None, 100)
        .await
        .expect("destination changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].child_id, moving.to_string());
    assert_eq!(changes[0].to_urn, SCHOOL_B);
    assert_eq!(changes[0].actor_name, "officer-1");
    let no_shows = queries::day_one_no_shows(&db, Some(LA), None, None, 100)
        .await
        .expect("no-shows");
    assert_eq!(no_shows.len(), 1);
    assert!(no_shows[0].resolved);
    assert_eq!(no_shows[0].resolved_on.as_deref(), Some("2026-09-07"));

    // Cleared reasons stay in the table with the day they cleared.
    let cleared = scalar(
        &db,
        "select count(*) from watchlist where cleared_on is not null",
    )
    .await;
    assert!(
        cleared >= 7,
        "cleared rows stay for trends, found {cleared}"
    );

    assert_every_event_projected_once(&db).await;
    let live = dump_all(&db).await;
    rebuild_all(&db).await;
    let rebuilt = dump_all(&db).await;
    assert_same_tables(&live, &rebuilt);

    // The rebuilt tables answer the same.
    assert_eq!(reasons(no_place, now.clone()).await, None);
    assert_eq!(
        reasons(left_alone, due.succ_opt().expect("a date").to_string()).await,
        list(&["overdue_track_step", "reported_missing"])
    );
    db.close().await;
}

/// Migration 0006 fills each open watchlist row's `page` from the seven
/// columns of migration 0004 exactly as the projector writes it, and a
/// one-reason page read from it shows each child as the general path does.
async fn migration_0006_writes_the_page_as_the_projector_does(url: &str) {
    let (db, store) = open(url).await;
    // The stories' first steps, which leave children on the watchlist.
    for n in 0..16u32 {
        let child = Uuid::new_v4();
        execute(&store, child, register(n)).await;
        for command in story(n as usize).into_iter().take(1 + n as usize % 2) {
            execute(&store, child, command).await;
        }
    }
    catch_up_all(&db, 1000).await;
    let open_pages = || async {
        sqlx::query_as::<_, (String, String, i64, Option<String>)>(
            "select child_id, reason, opened_position, page from watchlist \
             where cleared_on is null order by child_id, reason, opened_position",
        )
        .fetch_all(db.any())
        .await
        .expect("read the open rows")
    };
    let written = open_pages().await;
    let reasons: BTreeSet<&str> = written.iter().map(|row| row.1.as_str()).collect();
    assert!(
        reasons.len() >= 3,
        "the stories leave children on the watchlist for several reasons: {reasons:?}"
    );

    // Each row as it stood before 0006: the seven columns, no page.
    for (child, reason, opened, page) in &written {
        let page = page.as_deref().expect("an open row has its page");
        let fields: Vec<&str> = page.split('\u{1f}').collect();
        assert_eq!(fields.len(), 7, "{page:?}");
        let optional = |i: usize| (!fields[i].is_empty()).then_some(fields[i]);
        sqlx::query(
            "update watchlist set upn = $1, given_name = $2, family_name = $3, school_urn = $4, \
             destination_urn = $5, open_reasons = $6, next_due_on = $7, page = null \
             where child_id = $8 and reason = $9 and opened_position = $10",
        )
        .bind(fields[0])
        .bind(fields[1])
        .bind(fields[2])
        .bind(optional(3))
        .bind(optional(4))
        .bind(fields[5])
        .bind(optional(6))
        .bind(child)
        .bind(reason)
        .bind(opened)
        .execute(db.any())
        .await
        .expect("put a row back as before migration 0006");
    }
    let migration = match db.kind() {
        BackendKind::Postgres => {
            include_str!("../../migrations/postgres/0006_watchlist_page_one_column.sql")
        }
        BackendKind::Sqlite => {
            include_str!("../../migrations/sqlite/0006_watchlist_page_one_column.sql")
        }
    };
    let update = migration
        .split(';')
        .find(|statement| statement.trim_start().starts_with("update watchlist"))
        .expect("migration 0006 updates the watchlist");
    sqlx::query(update)
        .execute(db.any())
        .await
        .expect("migration 0006's update runs");
    assert_eq!(open_pages().await, written);
    assert_eq!(
        scalar(
            &db,
            "select count(*) from watchlist where upn is not null or open_reasons is not null"
        )
        .await,
        0,
        "the seven columns are emptied"
    );

    let filter = |reason: Option<&str>| WatchFilter {
        la_code: Some(LA.to_owned()),
        reason: reason.map(str::to_owned),
        today: today().to_string(),
        after: None,
        limit: 1000,
    };
    let all = queries::watchlist(&db, &filter(None))
        .await
        .expect("the general path");
    for reason in reasons {
        let page = queries::watchlist(&db, &filter(Some(reason)))
            .await
            .expect("the page path");
        assert!(!page.is_empty(), "{reason} lists someone");
        for item in &page {
            let general = all
                .iter()
                .find(|other| other.child_id == item.child_id)
                .unwrap_or_else(|| panic!("{} is on the general list", item.child_id));
            let shown = |item: &queries::WatchItem| {
                (
                    item.upn.clone(),
                    item.given_name.clone(),
                    item.family_name.clone(),
                    item.la_code.clone(),
                    item.school_urn.clone(),
                    item.destination_urn.clone(),
                    item.reason_details.clone(),
                )
            };
            assert_eq!(
                shown(item),
                shown(general),
                "{reason} page, {}",
                item.child_id
            );
        }
    }
    db.close().await;
}

// ---------------------------------------------------------------------------
// PostgreSQL only
// ---------------------------------------------------------------------------

/// The projector reads below the oldest running transaction, so an event
/// whose transaction commits after later events is still applied, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_the_projector_never_skips_an_event_whose_transaction_commits_late() {
    use sqlx::Connection as _;
    let Some((test_db, db, store)) = postgres_with_stories(3).await else {
        return;
    };
    let applied_before: BTreeMap<String, (i64, i64)> = {
        let mut map = BTreeMap::new();
        for name in PROJECTIONS {
            let at = projector::checkpoint(&db, name).await.expect("checkpoint");
            map.insert(name.to_owned(), (at.last_tx, at.last_pos));
        }
        map
    };
    let timeline_before = scalar(&db, "select count(*) from timeline").await;

    // A writer on its own connection inserts an event and does not commit yet.
    let late_child = Uuid::new_v4();
    let payload = serde_json::to_value(ChildEvent::ChildRegistered {
        upn: upn(900),
        given_name: name("Late"),
        family_name: name("Writer"),
        date_of_birth: day("2015-01-01"),
        la_code: LaCode::parse(LA).expect("an LA code"),
        school_urn: None,
        year_group: Some(6),
        sen: None,
        on: today(),
    })
    .expect("an event serializes");
    let metadata = serde_json::json!({
        "actor_name": "slow-writer",
        "actor_role": "la",
        "actor_org": LA,
        "request_id": "late-1",
        "command": "RegisterChild",
    });
    let mut slow = sqlx::PgConnection::connect(&test_db.url)
        .await
        .expect("a second connection");
    let mut slow_tx = slow.begin().await.expect("begin");
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         values ('child_case', $1, 1, 'ChildRegistered', '1.0', $2, $3)",
    )
    .bind(late_child.to_string())
    .bind(&payload)
    .bind(&metadata)
    .execute(&mut *slow_tx)
    .await
    .expect("insert the late event");

    // Later appends commit first: they hold later positions and later transaction ids.
    let later = register_and_tell(&store, 10).await;
    let later_positions: Vec<i64> = store
        .history(later, None)
        .await
        .expect("history")
        .iter()
        .map(|entry| entry.position)
        .collect();
    for name in PROJECTIONS {
        projector::catch_up(&db, name, 1000)
            .await
            .unwrap_or_else(|error| panic!("catch up {name}: {error}"));
        projector::run_once(&db, name, 1000)
            .await
            .unwrap_or_else(|error| panic!("run {name}: {error}"));
        let at = projector::checkpoint(&db, name).await.expect("checkpoint");
        assert_eq!(
            (at.last_tx, at.last_pos),
            applied_before[name],
            "{name} must not move past a transaction still running"
        );
    }
    assert_eq!(
        scalar(&db, "select count(*) from timeline").await,
        timeline_before
    );
    let projected_later: i64 =
        sqlx::query_scalar("select count(*) from timeline where child_id = $1")
            .bind(later.to_string())
            .fetch_one(db.any())
            .await
            .expect("count");
    assert_eq!(
        projected_later, 0,
        "events after the open transaction wait for it"
    );

    slow_tx.commit().await.expect("commit the late event");
    let late_position: i64 =
        sqlx::query_scalar("select global_position from events where aggregate_id = $1")
            .bind(late_child.to_string())
            .fetch_one(db.any())
            .await
            .expect("the late event is committed");
    assert!(
        later_positions
            .iter()
            .all(|position| *position > late_position),
        "the late event has the lower position but committed last"
    );

    catch_up_all(&db, 1000).await;
    assert_every_event_projected_once(&db).await;
    let summary = queries::child(&db, &late_child.to_string())
        .await
        .expect("child query")
        .expect("the late child is projected");
    assert_eq!(summary.given_name, "Late");
    let timeline = queries::timeline(&db, &late_child.to_string())
        .await
        .expect("timeline");
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].actor_name, "slow-writer");
    slow.close().await.expect("close");
    db.close().await;
    test_db.drop_database().await;
}

/// postgres-es 0.5's snapshot store applies a command's new events to the
/// aggregate a second time before saving the snapshot (once in `handle`
/// through the `EventSink`, again in `commit`), so the snapshot is not the
/// fold of the log. This documents why the service keeps snapshots off:
/// `Store` uses the event store only and never writes a snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_snapshot_mode_double_applies_and_stays_off() {
    use cqrs_es::persist::PersistedEventStore;
    use cqrs_es::{CqrsFramework, EventStore as _};
    use postgres_es::PostgresEventRepository;

    let Some(test_db) = rollcall_tests::pg::fresh_database().await else {
        return;
    };
    let (db, store) = open(&test_db.url).await;
    let pool = db.postgres().expect("a PostgreSQL database").clone();

    // The service's own path writes no snapshot.
    let served = register_and_tell(&store, 1).await;
    assert_eq!(scalar(&db, "select count(*) from snapshots").await, 0);
    let (folded, _) = store.replay(served, None).await.expect("replay");
    assert_eq!(folded.version, 6);

    let snapshotting = CqrsFramework::new(
        PersistedEventStore::<PostgresEventRepository, ChildCase>::new_snapshot_store(
            PostgresEventRepository::new(pool.clone()),
            2,
        ),
        vec![],
        services(),
    );
    let child = Uuid::new_v4();
    let id = child.to_string();
    let commands = [
        register(2),
        ChildCommand::AllocatePupil {
            school_urn: urn(SCHOOL_A),
        },
        ChildCommand::LodgeAppeal {
            school_urn: urn(SCHOOL_B),
        },
        ChildCommand::DecideAppeal {
            school_urn: urn(SCHOOL_B),
            outcome: AppealOutcome::Dismissed,
        },
        contact_attempt(None),
    ];
    for command in commands {
        snapshotting
            .execute_with_metadata(
                &id,
                command,
                std::collections::HashMap::from([("actor_name".to_owned(), "cqrs".to_owned())]),
            )
            .await
            .expect("the command is accepted");
    }
    // Snapshots every 2 events: after sequence 2 and sequence 4.
    let snapshot_row = sqlx::query(
        "select last_sequence, current_snapshot from snapshots where aggregate_id = $1",
    )
    .bind(&id)
    .fetch_one(db.any())
    .await
    .expect("the snapshot store wrote a snapshot");
    assert_eq!(snapshot_row.get::<i64, _>("last_sequence"), 4);
    assert_eq!(snapshot_row.get::<i64, _>("current_snapshot"), 2);

    let from_snapshot =
        PersistedEventStore::<PostgresEventRepository, ChildCase>::new_snapshot_store(
            PostgresEventRepository::new(pool.clone()),
            2,
        )
        .load_aggregate(&id)
        .await
        .expect("load through the snapshot")
        .aggregate;
    let fold = PersistedEventStore::<PostgresEventRepository, ChildCase>::new_event_store(
        PostgresEventRepository::new(pool),
    )
    .load_aggregate(&id)
    .await
    .expect("load from the events")
    .aggregate;
    let (replayed, _) = store.replay(child, None).await.expect("replay");
    assert_eq!(
        fold, replayed,
        "the event store's fold is the Store's replay"
    );
    assert_eq!(fold.version, 5);

    assert_ne!(
        from_snapshot, fold,
        "the snapshot is not the fold of the log"
    );
    // Each snapshot applied its command's event twice: two extra versions,
    // and those entries listed twice.
    assert_eq!(from_snapshot.version, fold.version + 2);
    assert_eq!(
        from_snapshot.entries,
        [
            "ChildRegistered",
            "PupilAllocated",
            "PupilAllocated",
            "AppealLodged",
            "AppealDecided",
            "AppealDecided",
            "ContactAttemptLogged",
        ]
    );
    assert_eq!(
        fold.entries,
        [
            "ChildRegistered",
            "PupilAllocated",
            "AppealLodged",
            "AppealDecided",
            "ContactAttemptLogged",
        ]
    );
    let distinct: BTreeSet<&String> = from_snapshot.entries.iter().collect();
    assert_eq!(distinct.len(), fold.entries.len());
    db.close().await;
    test_db.drop_database().await;
}

/// A rebuild on PostgreSQL writes fresh tables beside the live ones and swaps
/// them in (ADR 0008): while it runs, a `serve`'s projectors go on feeding the
/// live tables and readers never find them emptied; afterwards every event is
/// projected once and the tables equal another rebuild's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_rebuild_swaps_in_fresh_tables_while_the_live_ones_stay_readable_and_fed() {
    let Some((test_db, db, store)) = postgres_with_stories(30).await else {
        return;
    };
    let store = Arc::new(store);
    let children_before = scalar(&db, "select count(*) from child_summary").await;
    let timeline_before = scalar(&db, "select count(*) from timeline").await;
    assert_eq!(children_before, 30);

    // A `serve`: its projectors hold every projection's lock.
    let (stop, stopped) = watch::channel(false);
    let config = ProjectorConfig {
        batch_size: 7,
        poll_interval: Duration::from_millis(20),
    };
    let projectors: Vec<_> = PROJECTIONS
        .iter()
        .map(|name| tokio::spawn(projector::run(db.clone(), name, config, stopped.clone())))
        .collect();
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for n in 30..60 {
                register_and_tell(&store, n).await;
            }
        })
    };
    let (reading, still_reading) = watch::channel(true);
    let reader = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut reads = 0u32;
            while *still_reading.borrow() {
                let children = scalar(&db, "select count(*) from child_summary").await;
                let entries = scalar(&db, "select count(*) from timeline").await;
                assert!(
                    children >= children_before && entries >= timeline_before,
                    "the live tables shrank during a rebuild: {children} children, {entries} timeline entries"
                );
                reads += 1;
                sleep(Duration::from_millis(5)).await;
            }
            reads
        })
    };

    for name in PROJECTIONS {
        let rebuilt = projector::rebuild(&db, name, 50)
            .await
            .unwrap_or_else(|error| panic!("rebuild {name}: {error}"));
        assert_eq!(rebuilt.in_place, None, "{name} rebuilt in fresh tables");
    }
    writer.await.expect("the writer did not panic");
    reading.send(false).expect("the reader is listening");
    let reads = reader.await.expect("the reader saw no shrinking table");
    assert!(reads > 0, "the reader read during the rebuilds");

    wait_until_caught_up(&db).await;
    stop.send(true).expect("the projectors are listening");
    for projector in projectors {
        tokio::time::timeout(Duration::from_secs(30), projector)
            .await
            .expect("a projector stops promptly when told")
            .expect("a projector task did not panic");
    }
    assert_eq!(scalar(&db, "select count(*) from child_summary").await, 60);
    assert_every_event_projected_once(&db).await;
    assert_eq!(shadow_schemas(&db).await, 0, "no shadow schema is left");
    let live = dump_all(&db).await;
    rebuild_all(&db).await;
    assert_same_tables(&live, &dump_all(&db).await);
    db.close().await;
    test_db.drop_database().await;
}

/// The service role of docs/operations.md may not create schemas or drop the
/// owner's tables: its rebuilds empty and refill the live tables instead, and
/// say so, with the same result.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_the_service_role_rebuilds_in_place_with_the_same_result() {
    use sqlx::Executor as _;
    let Some((test_db, db, _)) = postgres_with_stories(12).await else {
        return;
    };
    let live = dump_all(&db).await;

    let role = format!("rollcall_app_{}", Uuid::new_v4().simple());
    let grants = format!(
        "create role {role} login password 'app'; \
         grant select, insert on events, access_log to {role}; \
         grant select, insert, update, delete on child_summary, child_upns, watchlist, \
             open_track_steps, incoming_cohort, transition_info, destination_changes, \
             day_one_no_shows, timeline, projection_checkpoints, api_tokens, snapshots to {role}; \
         grant truncate on child_summary, child_upns, watchlist, open_track_steps, incoming_cohort, \
             transition_info, destination_changes, day_one_no_shows, timeline to {role}; \
         grant usage on all sequences in schema public to {role};"
    );
    let owner = db.postgres().expect("a PostgreSQL database");
    owner
        .execute(grants.as_str())
        .await
        .expect("create the service role");
    let (_, rest) = test_db.url.split_once("://").expect("a URL");
    let host_and_database = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
    let app = Database::connect(
        &format!("postgres://{role}:app@{host_and_database}"),
        PoolSize::default(),
    )
    .await
    .expect("the service role connects");
    for name in PROJECTIONS {
        let rebuilt = projector::rebuild(&app, name, 5)
            .await
            .unwrap_or_else(|error| panic!("rebuild {name} as the service role: {error}"));
        let why = rebuilt.in_place.expect("rebuilt in place");
        assert!(why.contains("may not create schemas"), "{why}");
    }
    assert_same_tables(&live, &dump_all(&app).await);
    app.close().await;
    owner
        .execute(format!("drop owned by {role}; drop role {role}").as_str())
        .await
        .expect("drop the service role");
    db.close().await;
    test_db.drop_database().await;
}

/// A rebuild that cannot finish (another rebuild of the projection running,
/// an event it cannot read) reports why and leaves the live tables exactly as
/// they were, with no shadow behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_refused_or_failed_rebuild_leaves_the_live_tables_as_they_were() {
    let Some((test_db, db, _)) = postgres_with_stories(2).await else {
        return;
    };
    let live = dump_all(&db).await;
    let child: String = sqlx::query_scalar("select aggregate_id from events limit 1")
        .fetch_one(db.any())
        .await
        .expect("a child in the log");
    let child = Uuid::parse_str(&child).expect("children are UUIDs");

    // While another rebuild of a projection runs, a second one is refused.
    {
        use sqlx::Connection as _;
        let mut other = sqlx::PgConnection::connect(&test_db.url)
            .await
            .expect("another connection");
        sqlx::query("select pg_advisory_lock(hashtext('rollcall:rebuild:timeline'))")
            .execute(&mut other)
            .await
            .expect("take the rebuild lock");
        match projector::rebuild(&db, "timeline", 1000).await {
            Err(projector::ProjectionError::RebuildRunning(name)) => assert_eq!(name, "timeline"),
            other => panic!("a second rebuild of timeline: {other:?}"),
        }
        other.close().await.expect("close the other connection");
    }
    assert_same_tables(&live, &dump_all(&db).await);

    let next = i64::try_from(sequences_of(&db, child).await.len()).expect("a small count") + 1;
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         values ('child_case', $1, $2, 'NoSuchEvent', '1.0', '{\"NoSuchEvent\": {}}', '{}')",
    )
    .bind(child.to_string())
    .bind(next)
    .execute(db.any())
    .await
    .expect("append an event no projection can read");

    for name in PROJECTIONS {
        match projector::rebuild(&db, name, 1000).await {
            Err(projector::ProjectionError::BadEvent { .. }) => {}
            other => panic!("rebuild {name} over an unreadable event: {other:?}"),
        }
    }
    assert_same_tables(&live, &dump_all(&db).await);
    assert_eq!(shadow_schemas(&db).await, 0, "the shadows were dropped");
    db.close().await;
    test_db.drop_database().await;
}

/// A fresh PostgreSQL database holding `children` children's whole stories,
/// every projection caught up; `None` (the test is skipped) without PostgreSQL.
async fn postgres_with_stories(
    children: u32,
) -> Option<(rollcall_tests::pg::TestDb, Database, Store)> {
    let test_db = rollcall_tests::pg::fresh_database().await?;
    let (db, store) = open(&test_db.url).await;
    for n in 0..children {
        register_and_tell(&store, n).await;
    }
    catch_up_all(&db, 1000).await;
    Some((test_db, db, store))
}

/// Shadow schemas left in the database.
async fn shadow_schemas(db: &Database) -> i64 {
    scalar(
        db,
        "select count(*) from pg_namespace where nspname like 'rollcall\\_rebuild\\_%'",
    )
    .await
}
