//! Rollcall's storage benchmark, on PostgreSQL. See `docs/performance.md` for the
//! figures, the machine they came from and how to read them.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p rollcall-tests --bench store            # the full run, about 5 minutes
//! cargo bench -p rollcall-tests --bench store -- --quick     # small sizes, under a minute
//! ```
//!
//! `DATABASE_URL` names the server (as for the tests, through `rollcall_tests::pg`): every
//! run creates its own databases there and drops them afterwards (`--keep` leaves them).
//! Without it a throwaway cluster is started, whose fsync is off: its figures are not
//! comparable with a real server's, but the pgbench baseline runs on it too.
//!
//! What it measures, each beside what PostgreSQL itself reaches in the same run:
//!
//! 1. commands per second through `Store::execute` (`LogContactAttempt` on registered
//!    children, each writer on its own children) at 1, 16 and 64 concurrent writers, for a
//!    fixed time each; beside pgbench running a script shaped like a command (select one
//!    child's events, insert one event, in one transaction) at 16 clients;
//! 2. projector catch-up from zero over the events those commands appended;
//! 3. a full rebuild of 1,000,000 events (100,000 children of one LA, ten events each),
//!    beside an ordered scan of the log through the same driver;
//! 4. watchlist latency for that LA: one reason, 1,000 rows.
//!
//! The 1,000,000 events are decided by the real aggregate (`ChildCase::decide`) in memory
//! and bulk-inserted straight into `events` with multi-row INSERTs. That bypasses
//! postgres-es only to make the setup take a minute rather than an hour; the rows are the
//! ones postgres-es would write (same columns, payloads, metadata).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use domain::commands::{
    AppealOutcome, ConcernCategory, ContactMethod, ContactOutcome, HomeVisitOutcome,
};
use domain::values::{ExclusionReason, RemovalGround, Sen, check_letter};
use domain::{CaseServices, ChildCase, ChildCommand, LaCode, Name, Upn, Urn};
use projections::projector::{self, PROJECTIONS};
use projections::queries::{self, WatchFilter};
use projections::{Actor, CommandContext, Database, PoolSize, Store};
use rollcall_tests::pg::{TestDb, fresh_database};
use sqlx::{Executor as _, PgPool, Row as _};
use uuid::Uuid;

/// The allocator of the `rollcall` binary (`api/src/main.rs`), so the library is measured
/// as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Options {
    /// How long each writer level and pgbench run.
    seconds: u64,
    /// The writer levels.
    writers: Vec<usize>,
    /// Children registered per writer of the largest level (each level shares them out).
    children_per_writer: usize,
    /// Children generated for the rebuild and the watchlist; ten events each.
    rebuild_children: usize,
    /// Projector batch size for the catch-up (the `serve` default).
    catch_up_batch: i64,
    /// Projector batch size for the rebuild (what `rollcall projections rebuild` uses).
    rebuild_batch: i64,
    /// Timed watchlist queries.
    runs: usize,
    /// Leave the databases behind for inspection.
    keep: bool,
    /// Which parts to run.
    parts: Parts,
    /// Reuse this database's log (and leave it alone) instead of generating one.
    log_database: Option<String>,
    /// The projections to rebuild.
    projections: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct Parts {
    /// pgbench, commands, catch-up.
    commands: bool,
    /// The generated log: rebuild and watchlist.
    log: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seconds: 10,
            writers: vec![1, 16, 64],
            children_per_writer: 200,
            rebuild_children: 100_000,
            catch_up_batch: projector::ProjectorConfig::default().batch_size,
            rebuild_batch: projector::REBUILD_BATCH,
            runs: 200,
            keep: false,
            parts: Parts {
                commands: true,
                log: true,
            },
            log_database: None,
            projections: PROJECTIONS.iter().map(|name| (*name).to_owned()).collect(),
        }
    }
}

const USAGE: &str = "usage: cargo bench -p rollcall-tests --bench store -- [--quick] [--seconds N] \
     [--writers 1,16,64] [--children-per-writer N] [--rebuild-children N] [--catch-up-batch N] \
     [--rebuild-batch N] [--runs N] [--keep] [--only commands|log] [--log-database URL] \
     [--projections a,b]";

fn parse_options() -> Options {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    let number = |flag: &str, value: Option<String>| -> u64 {
        value
            .and_then(|raw| raw.replace('_', "").parse().ok())
            .unwrap_or_else(|| panic!("{flag} takes a whole number\n{USAGE}"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // `cargo bench` passes --bench to every bench binary.
            "--bench" => {}
            "--quick" => {
                options.seconds = 3;
                options.children_per_writer = 50;
                options.rebuild_children = 10_000;
                options.runs = 50;
            }
            "--seconds" => options.seconds = number(&arg, args.next()),
            "--writers" => {
                options.writers = args
                    .next()
                    .map(|list| {
                        list.split(',')
                            .map(|n| n.trim().parse().expect("--writers takes numbers"))
                            .collect()
                    })
                    .unwrap_or_else(|| panic!("--writers takes a list such as 1,16,64"));
            }
            "--children-per-writer" => {
                options.children_per_writer = number(&arg, args.next()) as usize;
            }
            "--rebuild-children" => options.rebuild_children = number(&arg, args.next()) as usize,
            "--catch-up-batch" => options.catch_up_batch = number(&arg, args.next()) as i64,
            "--rebuild-batch" => options.rebuild_batch = number(&arg, args.next()) as i64,
            "--runs" => options.runs = number(&arg, args.next()) as usize,
            "--keep" => options.keep = true,
            "--only" => match args.next().as_deref() {
                Some("commands") => options.parts.log = false,
                Some("log") => options.parts.commands = false,
                _ => panic!("--only takes commands or log\n{USAGE}"),
            },
            "--log-database" => {
                options.log_database = Some(args.next().expect("--log-database takes a URL"));
                options.parts.commands = false;
            }
            "--projections" => {
                options.projections = args
                    .next()
                    .expect("--projections takes a list")
                    .split(',')
                    .map(str::to_owned)
                    .collect();
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    assert!(
        !options.writers.is_empty() && options.writers.iter().all(|&n| n > 0),
        "--writers needs at least one level, each above zero"
    );
    options
}

fn main() {
    let options = parse_options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    runtime.block_on(run(options));
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Report {
    /// (measure, figure, baseline, ratio or detail, target)
    rows: Vec<[String; 5]>,
}

impl Report {
    fn row(
        &mut self,
        measure: &str,
        figure: String,
        baseline: String,
        ratio: String,
        target: &str,
    ) {
        println!("  {measure}: {figure}  [{baseline}] {ratio} {target}");
        self.rows.push([
            measure.to_owned(),
            figure,
            baseline,
            ratio,
            target.to_owned(),
        ]);
    }

    fn print(&self) {
        let headers = [
            "measure",
            "figure",
            "baseline (same run)",
            "ratio",
            "target",
        ];
        let mut widths = headers.map(str::len);
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 5]| {
            let mut out = String::from("|");
            for (cell, width) in cells.iter().zip(widths) {
                let _ = write!(out, " {cell:<width$} |");
            }
            out
        };
        println!("{}", line(headers));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        println!(
            "{}",
            line([
                rule[0].as_str(),
                rule[1].as_str(),
                rule[2].as_str(),
                rule[3].as_str(),
                rule[4].as_str()
            ])
        );
        for row in &self.rows {
            println!(
                "{}",
                line([
                    row[0].as_str(),
                    row[1].as_str(),
                    row[2].as_str(),
                    row[3].as_str(),
                    row[4].as_str()
                ])
            );
        }
    }
}

/// `12345.6` as `12,346`.
fn thousands(value: f64) -> String {
    let rounded = value.round() as i64;
    let digits = rounded.abs().to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if rounded < 0 { format!("-{out}") } else { out }
}

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.0}%", 100.0 * part / whole)
    } else {
        "n/a".to_owned()
    }
}

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// The databases this run created, dropped at the end (unless `--keep`) even if a
/// part panicked.
type Created = Arc<std::sync::Mutex<Vec<TestDb>>>;

async fn run(options: Options) {
    println!("Rollcall storage benchmark: {options:?}");
    let created: Created = Arc::default();
    let task = tokio::spawn(run_parts(options.clone(), Arc::clone(&created)));
    let outcome = task.await;
    let databases: Vec<TestDb> = std::mem::take(&mut *created.lock().expect("not poisoned"));
    for database in databases {
        if options.keep {
            println!("kept database {}", database.url);
        } else {
            database.drop_database().await;
        }
    }
    match outcome {
        Ok(report) => {
            println!("\nload average at the end: {}", load_average());
            println!();
            report.print();
        }
        Err(error) => {
            eprintln!("the benchmark failed: {error}");
            std::process::exit(1);
        }
    }
}

/// A fresh database on the benchmark's server, registered for dropping.
async fn fresh(created: &Created) -> String {
    let Some(database) = fresh_database().await else {
        eprintln!(
            "the benchmark needs PostgreSQL: set DATABASE_URL=postgres://... or install the server binaries"
        );
        std::process::exit(2);
    };
    let url = database.url.clone();
    created.lock().expect("not poisoned").push(database);
    url
}

async fn run_parts(options: Options, created: Created) -> Report {
    let mut report = Report::default();
    if options.parts.commands {
        let url = fresh(&created).await;
        print_machine(&url).await;
        commands_part(&options, &url, &mut report).await;
    }
    if options.parts.log {
        let url = match &options.log_database {
            Some(url) => url.clone(),
            None => fresh(&created).await,
        };
        if !options.parts.commands {
            print_machine(&url).await;
        }
        log_part(&options, &url, &mut report).await;
    }
    report
}

/// Commands through the store beside pgbench, then the projector catching up on them.
async fn commands_part(options: &Options, url: &str, report: &mut Report) {
    let max_writers = *options.writers.iter().max().expect("checked non-empty");

    // Set-up on its own small pool, closed before anything is timed: registrations
    // use both of a Database's pools (the UPN check reads through the `AnyPool`).
    let children = {
        let db = Database::connect(url, PoolSize::default())
            .await
            .expect("the benchmark database accepts connections");
        db.migrate().await.expect("migrations apply");
        let pg = db.postgres().expect("a PostgreSQL database").clone();
        check_connections(&pg, max_writers).await;

        // The PostgreSQL baseline first, while the server holds no other pool of ours.
        println!("\n== pgbench: a command's shape, PostgreSQL alone");
        let pgbench = pgbench_baseline(&pg, url, options).await;

        println!("\n== commands through Store::execute");
        let store = Arc::new(Store::new(db.clone()));
        let children =
            register_children(&store, max_writers * options.children_per_writer, 8).await;
        db.close().await;
        (children, pgbench)
    };
    let (children, pgbench) = children;

    // The timed pool: one connection per writer (the `AnyPool` beside it stays idle,
    // as commands without an idempotency key never use it).
    let db = Database::connect(
        url,
        PoolSize {
            max_connections: u32::try_from(max_writers).expect("writer counts are small"),
        },
    )
    .await
    .expect("the benchmark database accepts connections");
    let pg = db.postgres().expect("a PostgreSQL database").clone();
    let store = Arc::new(Store::new(db.clone()));
    let baseline = pgbench.as_ref().map_or_else(
        || "pgbench unavailable".to_owned(),
        |tps| format!("pgbench, 16 clients: {} tps", thousands(*tps)),
    );
    for &writers in &options.writers {
        let result = commands(&store, &children, writers, options.seconds).await;
        let target = if writers == 16 {
            "≥ 50% of pgbench"
        } else {
            ""
        };
        report.row(
            &format!(
                "commands/s, {writers} writer{}",
                if writers == 1 { "" } else { "s" }
            ),
            format!(
                "{} (p50 {}, p99 {})",
                thousands(result.per_second),
                ms(result.p50),
                ms(result.p99)
            ),
            baseline.clone(),
            pgbench.map_or_else(|| "n/a".to_owned(), |tps| percent(result.per_second, tps)),
            target,
        );
    }

    println!("\n== projector catch-up from zero");
    // The log was written moments ago and autovacuum has not analysed it yet. Without
    // statistics the planner reads the projector's "next batch" query as a sort of the
    // whole unread log for every batch; a live log has been analysed long since.
    pg.execute("analyze events").await.expect("analyze the log");
    let appended: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pg)
        .await
        .expect("count the log");
    let scan = ordered_scan(&db).await;
    let mut total = Duration::ZERO;
    for name in PROJECTIONS {
        let started = Instant::now();
        let applied = projector::catch_up(&db, name, options.catch_up_batch)
            .await
            .unwrap_or_else(|error| panic!("catch-up of {name} failed: {error}"));
        let elapsed = started.elapsed();
        total += elapsed;
        assert_eq!(applied, appended as u64, "{name} applied every event once");
        report.row(
            &format!("catch-up {name}, batch {}", options.catch_up_batch),
            format!(
                "{} events/s",
                thousands(applied as f64 / elapsed.as_secs_f64())
            ),
            format!("ordered scan: {} rows/s", thousands(scan)),
            format!(
                "{} events in {:.2} s",
                thousands(applied as f64),
                elapsed.as_secs_f64()
            ),
            "",
        );
    }
    report.row(
        "catch-up, all four in turn",
        format!(
            "{} events/s",
            thousands(appended as f64 / total.as_secs_f64())
        ),
        format!("ordered scan: {} rows/s", thousands(scan)),
        format!(
            "{} events in {:.2} s",
            thousands(appended as f64),
            total.as_secs_f64()
        ),
        "",
    );
    db.close().await;
}

/// The generated log: an ordered scan, a full rebuild of every projection, then the
/// watchlist over the rebuilt read models.
async fn log_part(options: &Options, url: &str, report: &mut Report) {
    println!("\n== full rebuild");
    let db = Database::connect(url, PoolSize::default())
        .await
        .expect("the benchmark database accepts connections");
    db.migrate().await.expect("migrations apply");
    let pg = db.postgres().expect("a PostgreSQL database").clone();
    let existing: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pg)
        .await
        .expect("count the log");
    let events = if existing > 0 {
        println!(
            "  reusing the {} events already in {}",
            thousands(existing as f64),
            url
        );
        existing as u64
    } else {
        load_generated_log(&pg, options.rebuild_children).await
    };
    let children: i64 = sqlx::query_scalar("select count(*) from events where sequence = 1")
        .fetch_one(&pg)
        .await
        .expect("count the children");
    let scan = ordered_scan(&db).await;
    let read = read_and_parse(&db, options.rebuild_batch).await;
    report.row(
        &format!("read + parse the log, batch {}", options.rebuild_batch),
        format!("{} events/s", thousands(read)),
        format!("ordered scan: {} rows/s", thousands(scan)),
        percent(read, scan),
        "",
    );
    let mut total = Duration::ZERO;
    for name in PROJECTIONS
        .iter()
        .filter(|name| options.projections.iter().any(|p| p == *name))
    {
        let started = Instant::now();
        let rebuilt = projector::rebuild(&db, name, options.rebuild_batch)
            .await
            .unwrap_or_else(|error| panic!("rebuild of {name} failed: {error}"));
        assert_eq!(rebuilt.in_place, None, "{name} was rebuilt in fresh tables");
        let applied = rebuilt.events;
        let elapsed = started.elapsed();
        total += elapsed;
        assert_eq!(applied, events, "{name} applied every event once");
        let rate = applied as f64 / elapsed.as_secs_f64();
        report.row(
            &format!("rebuild {name}, {} events", thousands(events as f64)),
            format!("{} events/s", thousands(rate)),
            format!("ordered scan: {} rows/s", thousands(scan)),
            format!("{} in {:.2} s", percent(rate, scan), elapsed.as_secs_f64()),
            "≥ 100,000 events/s",
        );
        let (rows, floor) = write_floor(&pg, name).await;
        report.row(
            &format!("  PostgreSQL alone writing {name}'s rows"),
            format!(
                "{} events/s",
                thousands(events as f64 / floor.as_secs_f64())
            ),
            format!(
                "{} rows in {:.2} s",
                thousands(rows as f64),
                floor.as_secs_f64()
            ),
            format!(
                "rebuild took {}",
                percent(floor.as_secs_f64(), elapsed.as_secs_f64())
            ),
            "",
        );
    }
    report.row(
        "rebuild, all in turn",
        format!(
            "{} events/s",
            thousands(events as f64 / total.as_secs_f64())
        ),
        format!("ordered scan: {} rows/s", thousands(scan)),
        format!("{:.2} s", total.as_secs_f64()),
        "",
    );

    println!("\n== watchlist latency");
    // A rebuild leaves the read models full of dead row versions; autovacuum would
    // clear them within a minute or so. Done here so the figures do not depend on when.
    for table in projector::tables_of("child_cases") {
        pg.execute(format!("vacuum analyze {table}").as_str())
            .await
            .expect("vacuum a read model");
    }
    check_page_agrees(&db).await;
    for (reason, target) in [
        (Some("no_destination"), "≤ 2 ms median"),
        (Some("overdue_track_step"), ""),
        (None, ""),
    ] {
        let (rows, median, p95) = watchlist_latency(&db, reason, options.runs).await;
        report.row(
            &format!(
                "watchlist, LA {LA} ({} children), {}, limit 1000",
                thousands(children as f64),
                reason.unwrap_or("all reasons")
            ),
            format!("median {}", ms(median)),
            format!("{} runs", options.runs),
            format!("p95 {}, {rows} rows", ms(p95)),
            target,
        );
    }
    db.close().await;
}

/// The machine and server the figures came from.
async fn print_machine(url: &str) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("MemTotal"))
                .map(|line| line.trim_start_matches("MemTotal:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!("machine: {cores} cores, CPU {cpu}, memory {memory}");
    // Other work on the machine takes cores from both PostgreSQL and the benchmark.
    println!("load average at the start: {}", load_average());
    let pool = PgPool::connect(url)
        .await
        .expect("the benchmark database accepts connections");
    let mut settings = Vec::new();
    for setting in [
        "server_version",
        "fsync",
        "synchronous_commit",
        "shared_buffers",
        "max_connections",
    ] {
        let value: String = sqlx::query_scalar(&format!("show {setting}"))
            .fetch_one(&pool)
            .await
            .expect("show a setting");
        settings.push(format!("{setting}={value}"));
    }
    println!("server: {}", settings.join(", "));
    pool.close().await;
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |loadavg| {
            loadavg
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const LA: &str = "330";
const PRIMARY: &str = "100009";
const SCHOOL_A: &str = "100001";
const SCHOOL_B: &str = "100002";

fn day(raw: &str) -> NaiveDate {
    raw.parse().expect("fixture dates are valid ISO dates")
}

/// The day every command is decided on.
fn today() -> NaiveDate {
    day("2026-09-10")
}

fn urn(raw: &str) -> Urn {
    Urn::parse(raw).expect("fixture URNs are six digits")
}

/// A valid, permanent UPN, distinct for each `n` below ten million.
fn upn(n: usize) -> Upn {
    let body = format!("80120{n:07}");
    let letter = char::from(check_letter(body.as_bytes()));
    Upn::parse(&format!("{letter}{body}")).expect("the check letter was computed for this body")
}

fn name(raw: &str) -> Name {
    Name::parse(raw).expect("fixture names are valid")
}

fn register(n: usize) -> ChildCommand {
    const GIVEN: [&str; 6] = ["Amy", "Ben", "Chloe", "Dev", "Ella", "Finn"];
    const FAMILY: [&str; 5] = ["Ahmed", "Brown", "Clarke", "Davies", "Evans"];
    ChildCommand::RegisterChild {
        upn: upn(n),
        given_name: name(GIVEN[n % GIVEN.len()]),
        family_name: name(FAMILY[n % FAMILY.len()]),
        date_of_birth: day("2015-05-01"),
        la_code: LaCode::parse(LA).expect("a three-digit LA code"),
        school_urn: Some(urn(PRIMARY)),
        year_group: Some(6),
        sen: (n % 7 == 0).then_some(Sen::K),
    }
}

fn la_officer() -> Actor {
    Actor {
        name: "officer-1".to_owned(),
        role: "la".to_owned(),
        org: LA.to_owned(),
    }
}

fn contact(on: &str) -> ChildCommand {
    ChildCommand::LogContactAttempt {
        method: ContactMethod::Phone,
        outcome: ContactOutcome::NoAnswer,
        notes: "rang twice, no answer".to_owned(),
        made_on: Some(day(on)),
    }
}

fn visit(on: &str) -> ChildCommand {
    ChildCommand::LogHomeVisit {
        visited_on: day(on),
        outcome: HomeVisitOutcome::NoAnswer,
        notes: "no one home; card left".to_owned(),
    }
}

fn concern(category: ConcernCategory) -> ChildCommand {
    ChildCommand::RecordTransitionConcern {
        category,
        notes: "raised in the transition lessons".to_owned(),
    }
}

fn share(school: &str) -> ChildCommand {
    ChildCommand::ShareTransitionInfo {
        school_urn: urn(school),
        sen: Some(Sen::K),
        semh: true,
        safeguarding: false,
        summary: "settles well with a named adult".to_owned(),
        strategies: "quiet space at lunch".to_owned(),
    }
}

/// The commands after registration of one of eight stories; each, with its registration,
/// decides exactly ten events on [`today`]. Between them they leave every event-driven
/// watchlist reason open for some children, and an overdue track step for others.
fn story(variant: usize) -> Vec<ChildCommand> {
    use ChildCommand as C;
    match variant % 8 {
        // No place allocated, then an appeal: no_destination and appeal_pending stay open.
        0 => vec![
            C::RecordNoAllocation {},
            contact("2026-09-01"),
            C::LodgeAppeal {
                school_urn: urn(SCHOOL_A),
            },
            concern(ConcernCategory::Anxiety),
            contact("2026-09-02"),
            visit("2026-09-04"),
            contact("2026-09-07"),
            contact("2026-09-08"),
            contact("2026-09-09"),
        ],
        // Allocated, moved, information shared, arrived, a short suspension.
        1 => vec![
            C::AllocatePupil {
                school_urn: urn(SCHOOL_A),
            },
            C::ConfirmDestination {
                school_urn: urn(SCHOOL_A),
            },
            C::ChangeDestination {
                school_urn: urn(SCHOOL_B),
                reason: "the family moved".to_owned(),
            },
            share(SCHOOL_B),
            concern(ConcernCategory::Friendships),
            C::RecordArrival {
                school_urn: urn(SCHOOL_B),
                date: day("2026-09-03"),
            },
            contact("2026-09-04"),
            C::RecordSuspension {
                start: day("2026-09-07"),
                school_days: 2,
                reasons: vec![ExclusionReason::parse("DB").expect("a census code")],
            },
            contact("2026-09-09"),
        ],
        // A day-one no-show still open, with enquiries under way.
        2 => vec![
            C::AllocatePupil {
                school_urn: urn(SCHOOL_A),
            },
            C::ConfirmDestination {
                school_urn: urn(SCHOOL_A),
            },
            share(SCHOOL_A),
            C::RecordNoShow {
                school_urn: urn(SCHOOL_A),
                date: day("2026-09-03"),
            },
            contact("2026-09-03"),
            contact("2026-09-04"),
            visit("2026-09-07"),
            contact("2026-09-08"),
            concern(ConcernCategory::Attendance),
        ],
        // Reported missing, enquiries, referral accepted: missing and CME referral open.
        3 => vec![
            C::ReportChildMissing {
                since: day("2026-08-24"),
                circumstances: "not seen since the summer".to_owned(),
            },
            contact("2026-08-25"),
            visit("2026-08-26"),
            C::RaiseCmeReferral {
                reason: "no contact after enquiries".to_owned(),
                override_reason: None,
            },
            C::AcceptCmeReferral {
                notes: "case opened".to_owned(),
            },
            contact("2026-09-01"),
            visit("2026-09-02"),
            contact("2026-09-08"),
            concern(ConcernCategory::Safeguarding),
        ],
        // Reported missing, never referred: the referral step is overdue.
        4 => vec![
            C::ReportChildMissing {
                since: day("2026-08-03"),
                circumstances: "family left the address".to_owned(),
            },
            contact("2026-08-04"),
            contact("2026-08-05"),
            visit("2026-08-06"),
            contact("2026-08-10"),
            visit("2026-08-12"),
            contact("2026-08-20"),
            contact("2026-09-01"),
            contact("2026-09-08"),
        ],
        // An appeal upheld (two events), confirmed, arrived.
        5 => vec![
            C::AllocatePupil {
                school_urn: urn(SCHOOL_A),
            },
            C::LodgeAppeal {
                school_urn: urn(SCHOOL_B),
            },
            C::DecideAppeal {
                school_urn: urn(SCHOOL_B),
                outcome: AppealOutcome::Upheld,
            },
            C::ConfirmDestination {
                school_urn: urn(SCHOOL_B),
            },
            share(SCHOOL_B),
            C::RecordArrival {
                school_urn: urn(SCHOOL_B),
                date: day("2026-09-03"),
            },
            contact("2026-09-07"),
            contact("2026-09-08"),
        ],
        // A day-one no-show resolved by a late arrival.
        6 => vec![
            C::AllocatePupil {
                school_urn: urn(SCHOOL_A),
            },
            C::RecordNoShow {
                school_urn: urn(SCHOOL_A),
                date: day("2026-09-03"),
            },
            contact("2026-09-03"),
            visit("2026-09-04"),
            C::RecordArrival {
                school_urn: urn(SCHOOL_A),
                date: day("2026-09-07"),
            },
            concern(ConcernCategory::Behaviour),
            contact("2026-09-08"),
            contact("2026-09-09"),
            contact("2026-09-10"),
        ],
        // Removed from the primary's roll with no destination: a child missing education.
        _ => vec![
            contact("2026-09-01"),
            contact("2026-09-02"),
            C::RemoveFromRoll {
                school_urn: urn(PRIMARY),
                ground: RemovalGround::G,
                date: today(),
                destination_urn: None,
            },
            contact("2026-09-10"),
            visit("2026-09-10"),
            concern(ConcernCategory::Other),
            contact("2026-09-10"),
            contact("2026-09-10"),
            contact("2026-09-10"),
        ],
    }
}

/// Who sends a command in the stories: the school it names for school business, else the LA.
fn actor_for(command: &ChildCommand) -> Actor {
    match command {
        ChildCommand::RecordArrival { school_urn, .. }
        | ChildCommand::RecordNoShow { school_urn, .. }
        | ChildCommand::RemoveFromRoll { school_urn, .. } => Actor {
            name: format!("school-{school_urn}"),
            role: "school".to_owned(),
            org: school_urn.as_str().to_owned(),
        },
        ChildCommand::ShareTransitionInfo { .. } | ChildCommand::RecordTransitionConcern { .. } => {
            Actor {
                name: format!("school-{PRIMARY}"),
                role: "school".to_owned(),
                org: PRIMARY.to_owned(),
            }
        }
        _ => la_officer(),
    }
}

// ---------------------------------------------------------------------------
// 1. Commands, and pgbench
// ---------------------------------------------------------------------------

/// Registers `count` children through the store, `writers` at a time; returns their ids.
async fn register_children(store: &Arc<Store>, count: usize, writers: usize) -> Vec<Uuid> {
    let started = Instant::now();
    let services = Arc::new(CaseServices::on(today()));
    let tasks = writers.clamp(1, count.max(1));
    let mut handles = Vec::new();
    for task in 0..tasks {
        let store = Arc::clone(store);
        let services = Arc::clone(&services);
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in (task..count).step_by(tasks) {
                let child = Uuid::new_v4();
                let context = CommandContext {
                    actor: la_officer(),
                    request_id: format!("bench-register-{n}"),
                    idempotency_key: None,
                    expected_version: None,
                };
                store
                    .execute(child, register(n), &context, &services)
                    .await
                    .unwrap_or_else(|error| panic!("registering child {n} failed: {error}"));
                ids.push(child);
            }
            ids
        }));
    }
    let mut ids = Vec::with_capacity(count);
    for handle in handles {
        ids.extend(handle.await.expect("a registering task does not panic"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  registered {} children in {elapsed:.1} s ({} registrations/s, {tasks} writers; not a target)",
        thousands(count as f64),
        thousands(count as f64 / elapsed)
    );
    ids
}

#[derive(Debug)]
struct Throughput {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `writers` tasks, each logging contact attempts on its own share of the children
/// round-robin, for `seconds`.
async fn commands(
    store: &Arc<Store>,
    children: &[Uuid],
    writers: usize,
    seconds: u64,
) -> Throughput {
    let services = Arc::new(CaseServices::on(today()));
    let start = Arc::new(tokio::sync::Barrier::new(writers + 1));
    let mut handles = Vec::new();
    for writer in 0..writers {
        let mine: Vec<Uuid> = children
            .iter()
            .skip(writer)
            .step_by(writers)
            .copied()
            .collect();
        assert!(!mine.is_empty(), "every writer has children of its own");
        let store = Arc::clone(store);
        let services = Arc::clone(&services);
        let start = Arc::clone(&start);
        handles.push(tokio::spawn(async move {
            let actor = la_officer();
            let mut latencies = Vec::new();
            start.wait().await;
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut n = 0usize;
            loop {
                let began = Instant::now();
                if began >= deadline {
                    break;
                }
                let context = CommandContext {
                    actor: actor.clone(),
                    request_id: format!("bench-{writer}-{n}"),
                    idempotency_key: None,
                    expected_version: None,
                };
                let command = ChildCommand::LogContactAttempt {
                    method: ContactMethod::Phone,
                    outcome: ContactOutcome::NoAnswer,
                    notes: "rang twice, no answer".to_owned(),
                    made_on: None,
                };
                store
                    .execute(mine[n % mine.len()], command, &context, &services)
                    .await
                    .unwrap_or_else(|error| panic!("writer {writer}: command failed: {error}"));
                latencies.push(began.elapsed());
                n += 1;
            }
            latencies
        }));
    }
    start.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await.expect("a writer does not panic"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Throughput {
        per_second: latencies.len() as f64 / elapsed,
        p50: quantile(&latencies, 0.50),
        p99: quantile(&latencies, 0.99),
    }
}

/// Warns when the server may refuse the largest writer level's connections (a pool
/// that cannot connect fails its writers with "pool timed out").
async fn check_connections(pool: &PgPool, writers: usize) {
    let free: i64 = sqlx::query_scalar(
        "select current_setting('max_connections')::bigint \
              - current_setting('superuser_reserved_connections')::bigint \
              - (select count(*) from pg_stat_activity)",
    )
    .fetch_one(pool)
    .await
    .expect("count the server's connections");
    let needed = i64::try_from(writers).expect("writer counts are small") + 4;
    if free < needed {
        println!(
            "  warning: the server has {free} free connections and {writers} writers need \
             {needed}; other clients are using it (raise max_connections or run fewer writers)"
        );
    }
}

/// `pgbench` on PATH, else the newest Debian server directory's.
fn find_pgbench() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("pgbench"))
        .find(|path| path.is_file())
        .or_else(|| {
            let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let version = entry.file_name().to_str()?.parse().ok()?;
                    let path = entry.path().join("bin/pgbench");
                    path.is_file().then_some((version, path))
                })
                .collect();
            found.sort();
            found.pop().map(|(_, path)| path)
        })
}

const PGBENCH_CLIENTS: usize = 16;
const PGBENCH_CHILDREN_PER_CLIENT: usize = 200;

/// pgbench at 16 clients on a scratch copy of `events` (same columns, defaults, identity
/// and indexes; no append-only trigger), each transaction shaped like a command: read one
/// child's events, append one, commit. Returns its tps, or `None` without pgbench.
async fn pgbench_baseline(pool: &PgPool, url: &str, options: &Options) -> Option<f64> {
    let Some(pgbench) = find_pgbench() else {
        println!("  pgbench not found (PATH, /usr/lib/postgresql/*/bin): no baseline");
        return None;
    };
    pool.execute("create table bench_pgbench_events (like events including all)")
        .await
        .expect("create the pgbench scratch table");
    // Each client appends to its own children, as each writer does, so no transaction
    // fails on the primary key; every child starts with its registration.
    sqlx::query(
        "insert into bench_pgbench_events \
           (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         select 'child_case', 'pgbench-' || c || '-' || n, 1, 'ChildRegistered', '1.0', \
                jsonb_build_object('type', 'ChildRegistered', 'upn', 'P' || c || '-' || n, \
                  'given_name', 'Amy', 'family_name', 'Example', 'date_of_birth', '2015-05-01', \
                  'la_code', '330', 'school_urn', '100009', 'year_group', 6, 'sen', null, \
                  'on', '2026-09-10'), \
                '{\"actor_name\": \"officer-1\", \"actor_role\": \"la\", \"actor_org\": \"330\", \
                  \"request_id\": \"bench\", \"command\": \"RegisterChild\"}'::jsonb \
           from generate_series(0, $1 - 1) c, generate_series(1, $2) n",
    )
    .bind(PGBENCH_CLIENTS as i32)
    .bind(PGBENCH_CHILDREN_PER_CLIENT as i32)
    .execute(pool)
    .await
    .expect("seed the pgbench scratch table");
    pool.execute("vacuum analyze bench_pgbench_events")
        .await
        .expect("vacuum the scratch table");

    let script = format!(
        "\\set n random(1, {PGBENCH_CHILDREN_PER_CLIENT})\n\
         BEGIN;\n\
         SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
           FROM bench_pgbench_events \
          WHERE aggregate_type = 'child_case' AND aggregate_id = 'pgbench-' || :client_id || '-' || :n \
          ORDER BY sequence;\n\
         INSERT INTO bench_pgbench_events \
           (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT 'child_case', 'pgbench-' || :client_id || '-' || :n, coalesce(max(sequence), 0) + 1, \
                'ContactAttemptLogged', '1.0', \
                '{{\"type\": \"ContactAttemptLogged\", \"method\": \"phone\", \"outcome\": \"no_answer\", \
                  \"notes\": \"rang twice, no answer\", \"made_on\": \"2026-09-10\"}}'::jsonb, \
                '{{\"actor_name\": \"officer-1\", \"actor_role\": \"la\", \"actor_org\": \"330\", \
                  \"request_id\": \"bench\", \"command\": \"LogContactAttempt\"}}'::jsonb \
           FROM bench_pgbench_events \
          WHERE aggregate_type = 'child_case' AND aggregate_id = 'pgbench-' || :client_id || '-' || :n;\n\
         END;\n"
    );
    let path = std::env::temp_dir().join(format!("rollcall-bench-{}.sql", std::process::id()));
    std::fs::write(&path, script).expect("write the pgbench script");
    let args = [
        "-c".to_owned(),
        PGBENCH_CLIENTS.to_string(),
        "-j".to_owned(),
        "2".to_owned(),
        "-T".to_owned(),
        options.seconds.to_string(),
        "-n".to_owned(),
        "-f".to_owned(),
        path.display().to_string(),
    ];
    println!("  {} {} <database URL>", pgbench.display(), args.join(" "));
    let output = tokio::process::Command::new(&pgbench)
        .args(&args)
        .arg(url)
        .output()
        .await
        .expect("run pgbench");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        panic!(
            "pgbench failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tps = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench's output:\n{stdout}"));
    for line in stdout.lines().filter(|line| {
        line.starts_with("number of transactions actually processed")
            || line.starts_with("number of failed")
            || line.starts_with("latency average")
            || line.starts_with("tps")
    }) {
        println!("  pgbench: {line}");
    }
    pool.execute("drop table bench_pgbench_events")
        .await
        .expect("drop the pgbench scratch table");
    Some(tps)
}

// ---------------------------------------------------------------------------
// 2 and 3. The log: scan, generation, rebuild
// ---------------------------------------------------------------------------

/// Rows per second of one ordered scan of the whole log through the driver the projector
/// uses, decoding the columns it reads (no JSON parsing, no writes): the ceiling for any
/// projection that reads the log in order.
async fn ordered_scan(db: &Database) -> f64 {
    use futures::TryStreamExt as _;
    let started = Instant::now();
    let mut rows = sqlx::query(
        "select tx_id::text::bigint as tx, global_position as position, aggregate_id, sequence, \
         payload::text as payload, metadata::text as metadata, \
         to_char(recorded_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') as recorded_at \
         from events order by tx_id, global_position",
    )
    .fetch(db.any());
    let mut count = 0u64;
    let mut bytes = 0usize;
    while let Some(row) = rows.try_next().await.expect("scan the log") {
        let payload: String = row.try_get("payload").expect("payload is text");
        let metadata: String = row.try_get("metadata").expect("metadata is text");
        bytes += payload.len() + metadata.len();
        count += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  ordered scan: {} rows ({} MB of JSON) in {elapsed:.2} s",
        thousands(count as f64),
        bytes / 1_000_000
    );
    count as f64 / elapsed
}

/// Events per second of reading the log in projector batches and parsing every event,
/// without applying anything: what a projection costs before it writes.
async fn read_and_parse(db: &Database, batch: i64) -> f64 {
    let started = Instant::now();
    let (mut tx, mut pos, mut count) = (0i64, 0i64, 0u64);
    loop {
        let events = projector::read_after(db, tx, pos, batch)
            .await
            .expect("read the log");
        let Some(last) = events.last() else { break };
        (tx, pos) = (last.tx, last.position);
        count += events.len() as u64;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// How long PostgreSQL itself takes to write a rebuilt projection's rows as a shadow
/// rebuild does: each of its tables copied with `insert ... select` into an empty table
/// made `like` it with only its primary key (same columns, logged), then its other
/// indexes built, one statement each, no client involved. A floor for the rebuild's writing, which also reads and parses the log and
/// writes a child's rows again when a later batch changes them.
async fn write_floor(pg: &PgPool, name: &str) -> (u64, Duration) {
    let mut rows = 0u64;
    let mut took = Duration::ZERO;
    for table in projector::tables_of(name) {
        let copy = format!("bench_floor_{table}");
        pg.execute(
            format!(
                "drop table if exists {copy}; \
                 create table {copy} (like {table} including all excluding indexes)"
            )
            .as_str(),
        )
        .await
        .expect("create the copy");
        let key: Option<String> = sqlx::query_scalar(
            "select pg_get_constraintdef(oid) from pg_constraint \
              where conrelid = $1::regclass and contype = 'p'",
        )
        .bind(*table)
        .fetch_optional(pg)
        .await
        .expect("read the primary key");
        if let Some(key) = key {
            pg.execute(format!("alter table {copy} add {key}").as_str())
                .await
                .expect("add the primary key");
        }
        let indexes: Vec<String> = sqlx::query_scalar(
            "select pg_get_indexdef(indexrelid) from pg_index \
              where indrelid = $1::regclass and not indisprimary order by indexrelid",
        )
        .bind(*table)
        .fetch_all(pg)
        .await
        .expect("read the indexes");
        let started = Instant::now();
        let done = sqlx::query(&format!("insert into {copy} select * from {table}"))
            .execute(pg)
            .await
            .expect("copy the rows");
        for (n, index) in indexes.iter().enumerate() {
            let (_, rest) = index
                .split_once(&format!(" ON public.{table} "))
                .expect("an index of the table");
            let unique = if index.starts_with("CREATE UNIQUE") {
                "unique "
            } else {
                ""
            };
            pg.execute(
                format!("create {unique}index bench_floor_{table}_{n} on {copy} {rest}").as_str(),
            )
            .await
            .expect("build the index");
        }
        took += started.elapsed();
        rows += done.rows_affected();
        pg.execute(format!("drop table {copy}").as_str())
            .await
            .expect("drop the copy");
    }
    (rows, took)
}

/// One event as inserted.
struct Generated {
    child_id: String,
    sequence: i64,
    event_type: &'static str,
    payload: String,
    metadata: String,
}

/// Children generated, and inserted, per block.
const BLOCK: usize = 10_000;

/// Decides `children` children's stories in memory and inserts their events; returns the
/// number of events. Within each block of 10,000 children the events are interleaved as
/// they would arrive over time (every child's first event, then every child's second,
/// ...), so a projector batch touches thousands of different children.
async fn load_generated_log(pool: &PgPool, children: usize) -> u64 {
    println!(
        "  generating {} children's stories with ChildCase::decide and bulk-inserting them \
         (bypassing postgres-es, for setup speed only)",
        thousands(children as f64)
    );
    let started = Instant::now();
    let services = CaseServices::on(today());
    let mut total = 0u64;
    let mut by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut first = 0;
    while first < children {
        let last = (first + BLOCK).min(children);
        let stories: Vec<Vec<Generated>> =
            (first..last).map(|n| decide_story(n, &services)).collect();
        let longest = stories.iter().map(Vec::len).max().unwrap_or(0);
        let mut interleaved = Vec::with_capacity(stories.len() * longest);
        let mut stories: Vec<std::vec::IntoIter<Generated>> =
            stories.into_iter().map(Vec::into_iter).collect();
        for _ in 0..longest {
            for story in &mut stories {
                if let Some(event) = story.next() {
                    *by_type.entry(event.event_type).or_default() += 1;
                    interleaved.push(event);
                }
            }
        }
        total += interleaved.len() as u64;
        insert_events(pool, interleaved).await;
        first = last;
    }
    let inserted = started.elapsed().as_secs_f64();
    pool.execute("vacuum analyze events")
        .await
        .expect("vacuum the log");
    // Write the load's dirty pages out now, so the checkpointer does not do it in the
    // middle of the timed rebuild. Needs superuser or pg_checkpoint; skipped without.
    if let Err(error) = pool.execute("checkpoint").await {
        println!("  (no checkpoint after the load: {error})");
    }
    println!(
        "  {} events in {inserted:.1} s, then vacuum analyze and checkpoint in {:.1} s; by type: {}",
        thousands(total as f64),
        started.elapsed().as_secs_f64() - inserted,
        by_type
            .iter()
            .map(|(kind, count)| format!("{kind} {}", thousands(*count as f64)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    total
}

/// Child `n`'s registration and story, decided and applied in memory.
fn decide_story(n: usize, services: &CaseServices) -> Vec<Generated> {
    let child_id = Uuid::new_v4().to_string();
    let mut case = ChildCase::default();
    let mut events = Vec::new();
    for (i, command) in std::iter::once(register(n)).chain(story(n)).enumerate() {
        let actor = actor_for(&command);
        let command_name = command.name();
        let decided = case.decide(command, services).unwrap_or_else(|error| {
            panic!("story {} command {i} ({command_name}): {error}", n % 8)
        });
        for event in decided {
            let metadata = serde_json::json!({
                "actor_name": actor.name,
                "actor_role": actor.role,
                "actor_org": actor.org,
                "request_id": format!("bench-{n}-{i}"),
                "command": command_name,
            });
            events.push(Generated {
                child_id: child_id.clone(),
                sequence: i64::try_from(case.version + 1).expect("a short story"),
                event_type: event.name(),
                payload: serde_json::to_string(&event).expect("events serialize"),
                metadata: metadata.to_string(),
            });
            cqrs_es::Aggregate::apply(&mut case, event);
        }
    }
    assert_eq!(events.len(), 10, "story {} decides ten events", n % 8);
    events
}

/// Inserts events in order, 5,000 rows per INSERT, each its own transaction.
async fn insert_events(pool: &PgPool, events: Vec<Generated>) {
    for chunk in events.chunks(5000) {
        let mut ids = Vec::with_capacity(chunk.len());
        let mut sequences = Vec::with_capacity(chunk.len());
        let mut types = Vec::with_capacity(chunk.len());
        let mut payloads = Vec::with_capacity(chunk.len());
        let mut metadata = Vec::with_capacity(chunk.len());
        for event in chunk {
            ids.push(event.child_id.as_str());
            sequences.push(event.sequence);
            types.push(event.event_type);
            payloads.push(event.payload.as_str());
            metadata.push(event.metadata.as_str());
        }
        sqlx::query(
            "insert into events \
               (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             select 'child_case', id, seq, kind, '1.0', payload::jsonb, metadata::jsonb \
               from unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[]) \
                 with ordinality as rows (id, seq, kind, payload, metadata, ord) \
              order by ord",
        )
        .bind(&ids)
        .bind(&sequences)
        .bind(&types)
        .bind(&payloads)
        .bind(&metadata)
        .execute(pool)
        .await
        .expect("insert generated events");
    }
}

// ---------------------------------------------------------------------------
// 4. The watchlist
// ---------------------------------------------------------------------------

/// One reason's page is read from the watchlist rows' own copy of each child
/// (migrations 0004 and 0006); the all-reasons page is assembled from child_summary,
/// watchlist and open_track_steps. Every child on both must look the same.
async fn check_page_agrees(db: &Database) {
    let filter = |reason: Option<&str>| WatchFilter {
        la_code: Some(LA.to_owned()),
        reason: reason.map(str::to_owned),
        today: today().to_string(),
        after: None,
        limit: 1000,
    };
    let all = queries::watchlist(db, &filter(None))
        .await
        .expect("the watchlist query runs");
    let by_id: BTreeMap<&str, &queries::WatchItem> = all
        .iter()
        .map(|item| (item.child_id.as_str(), item))
        .collect();
    let mut compared = 0;
    for reason in [
        "no_destination",
        "appeal_pending",
        "day_one_no_show",
        "reported_missing",
    ] {
        for item in queries::watchlist(db, &filter(Some(reason)))
            .await
            .expect("the watchlist query runs")
        {
            let Some(general) = by_id.get(item.child_id.as_str()) else {
                continue;
            };
            let mut general = (*general).clone();
            general.since = item.since.clone();
            assert_eq!(
                item, general,
                "the {reason} page agrees with the general path"
            );
            compared += 1;
        }
    }
    println!("  the one-reason pages agree with the general path on {compared} children");
}

/// Times `runs` watchlist queries for LA 330 and `reason`, limit 1000, after ten
/// untimed ones; returns the row count, median and p95.
async fn watchlist_latency(
    db: &Database,
    reason: Option<&str>,
    runs: usize,
) -> (usize, Duration, Duration) {
    let filter = WatchFilter {
        la_code: Some(LA.to_owned()),
        reason: reason.map(str::to_owned),
        today: today().to_string(),
        after: None,
        limit: 1000,
    };
    let mut rows = 0;
    for _ in 0..10 {
        rows = queries::watchlist(db, &filter)
            .await
            .expect("the watchlist query runs")
            .len();
    }
    let mut timings = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let items = queries::watchlist(db, &filter)
            .await
            .expect("the watchlist query runs");
        timings.push(started.elapsed());
        assert_eq!(items.len(), rows, "the same page every time");
    }
    timings.sort();
    (rows, quantile(&timings, 0.5), quantile(&timings, 0.95))
}
