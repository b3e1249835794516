//! A fresh, empty PostgreSQL database for each test.
//!
//! Where the server comes from, decided once per test process:
//!
//! 1. `DATABASE_URL` (a `postgres://` or `postgresql://` URL): used as the *admin* connection;
//!    every test database is created on that server and the URL's database is left alone.
//! 2. Otherwise PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`): this process
//!    starts one throwaway cluster in a temporary directory on a free 127.0.0.1 port, and a
//!    detached watchdog shell deletes it once the test process has exited. Binaries are looked
//!    for in `$ROLLCALL_PG_BINDIR` if that is set (and nowhere else), else next to the `initdb`
//!    on `PATH`, else in the highest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
//! 3. Neither: with `CI=true` every PostgreSQL test panics, because a green CI run that
//!    silently skipped the database tests would be a lie. Locally the tests skip: the reason is
//!    written once per process straight to standard error (deliberately bypassing libtest's
//!    output capture, so it shows up in a plain `cargo test`), and the harness self-test
//!    `postgres_tests_are_enabled_or_skip_is_reported` prints it as well
//!    (`cargo test -p rollcall-tests -- --nocapture postgres_tests_are` to see it).
//!
//! A test that needs PostgreSQL starts with
//!
//! ```no_run
//! # async fn example() {
//! let Some(db) = rollcall_tests::pg::fresh_database().await else { return };
//! // ... use db.url ...
//! db.drop_database().await;
//! # }
//! ```
//!
//! Everything process-wide lives in a `std::sync::OnceLock` filled by blocking
//! `std::process` calls, because tests run on many threads, each `#[tokio::test]` with its own
//! runtime; nothing here may belong to one runtime. For the same reason each call opens its own
//! short-lived admin connection instead of sharing a pool.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Once, OnceLock};

use sqlx::{Connection as _, Executor as _, PgConnection};
use uuid::Uuid;

/// Environment variable naming the directory that holds `initdb`, `pg_ctl` and `postgres`.
///
/// When set, it is the only place searched, so `ROLLCALL_PG_BINDIR=/nonexistent` (with no
/// `DATABASE_URL`) reproduces the "no PostgreSQL" path on a machine that has it installed.
pub const BINDIR_ENV: &str = "ROLLCALL_PG_BINDIR";

/// One empty database created for one test.
///
/// Dropping the value does not drop the database (that needs an async round trip, and Rust has
/// no async `Drop`); call [`TestDb::drop_database`] when the test is done. Databases left
/// behind in a throwaway cluster vanish with the cluster.
#[derive(Debug)]
pub struct TestDb {
    /// Connection URL of the new database, e.g. `postgres://postgres@127.0.0.1:41234/rollcall_test_…`.
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDb {
    /// The database's name (`rollcall_test_<uuid>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, disconnecting anyone still using it. Best effort: a failure is
    /// reported on standard error but never fails the test, since the test itself is over.
    pub async fn drop_database(self) {
        let sql = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        let result = async {
            let mut conn = PgConnection::connect(&self.admin_url).await?;
            conn.execute(sql.as_str()).await?;
            conn.close().await
        }
        .await;
        if let Err(error) = result {
            eprintln!(
                "warning: could not drop test database {}: {error}",
                self.name
            );
        }
    }
}

/// Creates a new, empty database and returns its URL, or `None` when PostgreSQL tests are
/// being skipped (see the module documentation).
///
/// # Panics
///
/// If no PostgreSQL is available and `CI=true`; if `DATABASE_URL` is set but is not a valid
/// PostgreSQL URL; if the server cannot be reached or refuses to create the database.
pub async fn fresh_database() -> Option<TestDb> {
    let admin_url = admin_url()?;
    let name = format!("rollcall_test_{}", Uuid::new_v4().simple());
    let url = with_database(admin_url, &name);

    let mut conn = PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot connect to PostgreSQL at {}: {error}",
                redact(admin_url)
            )
        });
    // Simple-query protocol (a plain `&str`): CREATE DATABASE may not run in a transaction
    // block. The name is ours (hex digits), so formatting it into the SQL is safe.
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot create database {name} on {}: {error}",
                redact(admin_url)
            )
        });
    // Closing politely only saves the server a log line; a failure here changes nothing.
    let _ = conn.close().await;

    Some(TestDb {
        url,
        name,
        admin_url: admin_url.to_owned(),
    })
}

/// Whether PostgreSQL tests will run in this process (starting the throwaway cluster if that
/// is what it takes). `false` means they are skipped, and the reason has been reported.
///
/// # Panics
///
/// Under the same conditions as [`fresh_database`], except connectivity, which this does not
/// check.
pub fn postgres_available() -> bool {
    admin_url().is_some()
}

/// One human-readable line saying which PostgreSQL the tests use, or why they are skipped.
///
/// # Panics
///
/// Under the same conditions as [`postgres_available`].
pub fn status_line() -> String {
    // Through admin_url() first, for its CI and misconfiguration panics and the skip report.
    let _ = admin_url();
    match backend() {
        Backend::Ready { description, .. } => format!("PostgreSQL tests enabled: {description}"),
        Backend::Unavailable { reason } | Backend::Misconfigured { reason } => skip_line(reason),
    }
}

/// What this process decided, once, about where PostgreSQL comes from.
#[derive(Debug)]
enum Backend {
    /// Test databases are created through `admin_url`.
    Ready {
        admin_url: String,
        description: String,
    },
    /// No PostgreSQL: skip locally, fail under `CI=true`.
    Unavailable { reason: String },
    /// `DATABASE_URL` is set but unusable: always fail, since someone asked for that server.
    Misconfigured { reason: String },
}

fn backend() -> &'static Backend {
    static BACKEND: OnceLock<Backend> = OnceLock::new();
    BACKEND.get_or_init(detect)
}

/// The admin URL, or `None` (after reporting the skip once) when tests should skip.
fn admin_url() -> Option<&'static str> {
    match backend() {
        Backend::Ready { admin_url, .. } => Some(admin_url),
        Backend::Misconfigured { reason } => panic!("{reason}"),
        Backend::Unavailable { reason } => {
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                panic!(
                    "PostgreSQL is required under CI=true: set DATABASE_URL or install \
                     PostgreSQL server binaries ({reason})"
                );
            }
            static REPORTED: Once = Once::new();
            REPORTED.call_once(|| {
                // Straight to the process's standard error rather than `eprintln!`: libtest
                // captures the macros (and shows them only for failing tests) but not direct
                // writes, and a skip nobody sees is how database tests silently rot.
                let _ = writeln!(std::io::stderr(), "{}", skip_line(reason));
            });
            None
        }
    }
}

fn skip_line(reason: &str) -> String {
    format!(
        "SKIPPED PostgreSQL tests: {reason}; install PostgreSQL (Debian: apt-get install \
         postgresql) or set DATABASE_URL=postgres://... to run them"
    )
}

fn detect() -> Backend {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            return match reqwest::Url::parse(&url) {
                Ok(parsed) if matches!(parsed.scheme(), "postgres" | "postgresql") => {
                    Backend::Ready {
                        description: format!("DATABASE_URL={}", redact(&url)),
                        admin_url: url,
                    }
                }
                _ => Backend::Misconfigured {
                    reason: format!(
                        "DATABASE_URL={} is not a postgres:// URL; point it at a PostgreSQL \
                         server the tests may create databases on, or unset it",
                        redact(&url)
                    ),
                },
            };
        }
        _ => {}
    }

    let bindir = match find_bindir() {
        Ok(bindir) => bindir,
        Err(why) => {
            return Backend::Unavailable {
                reason: format!("no DATABASE_URL and {why}"),
            };
        }
    };
    match start_cluster(&bindir) {
        Ok(cluster) => Backend::Ready {
            description: format!(
                "throwaway cluster from {} in {} (removed when the test process exits)",
                bindir.display(),
                cluster.dir.display()
            ),
            admin_url: cluster.admin_url,
        },
        Err(error) => Backend::Unavailable {
            reason: format!(
                "no DATABASE_URL, and a throwaway cluster using {} failed to start: {error}",
                bindir.display()
            ),
        },
    }
}

/// `url` with its database (path) replaced by `database`; query parameters are kept.
fn with_database(url: &str, database: &str) -> String {
    let mut url = reqwest::Url::parse(url).expect("the admin URL was parsed when it was chosen");
    url.set_path(&format!("/{database}"));
    url.into()
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have credentials, which this one just had.
            let _ = parsed.set_password(Some("***"));
            parsed.into()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

// ----------------------------------------------------------------------------------------
// Finding server binaries
// ----------------------------------------------------------------------------------------

const SERVER_BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

fn has_server_binaries(dir: &Path) -> bool {
    SERVER_BINARIES.iter().all(|name| dir.join(name).is_file())
}

fn find_bindir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(BINDIR_ENV) {
        let dir = PathBuf::from(dir);
        return if has_server_binaries(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "no initdb/pg_ctl/postgres in {BINDIR_ENV}={}",
                dir.display()
            ))
        };
    }

    // `initdb` on PATH. Distributions often put only symlinks there (Debian's
    // /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb), so fall back to the
    // directory the symlink resolves to for the sibling binaries.
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let initdb = dir.join("initdb");
        if !initdb.is_file() {
            continue;
        }
        if has_server_binaries(&dir) {
            return Ok(dir);
        }
        if let Some(real_dir) = initdb
            .canonicalize()
            .ok()
            .and_then(|real| real.parent().map(Path::to_path_buf))
        {
            if has_server_binaries(&real_dir) {
                return Ok(real_dir);
            }
        }
    }

    // Debian/Ubuntu keep server binaries off PATH, one directory per major version.
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            has_server_binaries(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb found (not on PATH, not in /usr/lib/postgresql/*/bin)".to_owned())
}

// ----------------------------------------------------------------------------------------
// The throwaway cluster
// ----------------------------------------------------------------------------------------

#[derive(Debug)]
struct Cluster {
    admin_url: String,
    dir: PathBuf,
}

/// Settings that make a disposable cluster fast and roomy; durability is pointless here.
const SERVER_SETTINGS: &str = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                               -c max_connections=300";

fn start_cluster(bindir: &Path) -> Result<Cluster, String> {
    let run_as = RunAs::detect()?;
    let dir = std::env::temp_dir().join(format!(
        "rollcall-pg-{}-{}",
        std::process::id(),
        Uuid::new_v4().simple()
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let data = dir.join("data");
    let log = dir.join("postgres.log");
    let pg_ctl = bindir.join("pg_ctl");

    // The watchdog comes first so that even a half-initialised cluster gets cleaned up.
    let stop = run_as.argv(
        &pg_ctl,
        &[
            "-D".into(),
            path_str(&data)?,
            "stop".into(),
            "-m".into(),
            "immediate".into(),
        ],
    );
    spawn_watchdog(&dir, &stop)?;

    if matches!(run_as, RunAs::Root { .. }) {
        run(
            &dir,
            &[
                "chown".into(),
                "-R".into(),
                "postgres".into(),
                path_str(&dir)?,
            ],
        )?;
    }

    run(
        &dir,
        &run_as.argv(
            &bindir.join("initdb"),
            &[
                "-D".into(),
                path_str(&data)?,
                "-U".into(),
                "postgres".into(),
                "--auth=trust".into(),
                "-E".into(),
                "UTF8".into(),
                "--locale=C".into(),
                // Nothing needs to survive a crash, so skip initdb's fsyncs.
                "--no-sync".into(),
            ],
        ),
    )
    .map_err(|e| format!("initdb failed: {e}"))?;

    // Picking a free port and then binding it is racy (another process may take it in
    // between), so try a few ports before giving up.
    let mut last_error = String::new();
    for _attempt in 0..3 {
        let port = free_port()?;
        // pg_ctl hands -o to a shell, hence the quoting of the socket directory.
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} {SERVER_SETTINGS}",
            shell_quote(&path_str(&dir)?)
        );
        let start = run_as.argv(
            &pg_ctl,
            &[
                "-D".into(),
                path_str(&data)?,
                "-l".into(),
                path_str(&log)?,
                "-w".into(),
                "-t".into(),
                "60".into(),
                "-o".into(),
                options,
                "start".into(),
            ],
        );
        match run(&dir, &start) {
            Ok(_) => {
                return Ok(Cluster {
                    admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                    dir,
                });
            }
            Err(error) => {
                let log_tail = std::fs::read_to_string(&log)
                    .map(|text| text.lines().rev().take(10).collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default();
                last_error = format!(
                    "pg_ctl start failed: {error}\nserver log (last lines, newest first):\n{log_tail}"
                );
            }
        }
    }
    Err(last_error)
}

/// How to run the server binaries: PostgreSQL refuses to run as root, so as root they run as
/// the `postgres` OS user instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunAs {
    CurrentUser,
    Root { runuser: bool },
}

impl RunAs {
    fn detect() -> Result<Self, String> {
        let uid = run(&std::env::temp_dir(), &["id".into(), "-u".into()])?;
        if uid.trim() != "0" {
            return Ok(Self::CurrentUser);
        }
        run(
            &std::env::temp_dir(),
            &["id".into(), "-u".into(), "postgres".into()],
        )
        .map_err(|_| {
            "running as root, and there is no `postgres` OS user to run initdb as".to_owned()
        })?;
        if is_on_path("runuser") {
            Ok(Self::Root { runuser: true })
        } else if is_on_path("su") {
            Ok(Self::Root { runuser: false })
        } else {
            Err("running as root, and neither runuser nor su is available to switch to the postgres user".to_owned())
        }
    }

    /// The full command line running `program args` as the right user.
    fn argv(self, program: &Path, args: &[String]) -> Vec<String> {
        let program = program.display().to_string();
        match self {
            Self::CurrentUser => std::iter::once(program)
                .chain(args.iter().cloned())
                .collect(),
            Self::Root { runuser: true } => ["runuser", "-u", "postgres", "--"]
                .into_iter()
                .map(str::to_owned)
                .chain(std::iter::once(program))
                .chain(args.iter().cloned())
                .collect(),
            Self::Root { runuser: false } => {
                let command = std::iter::once(&program)
                    .chain(args)
                    .map(|word| shell_quote(word))
                    .collect::<Vec<_>>()
                    .join(" ");
                ["su", "postgres", "-s", "/bin/sh", "-c", &command]
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            }
        }
    }
}

/// Starts a shell that outlives this process: it waits for the test process to exit, then
/// stops the cluster and deletes `dir`. Rust runs no destructors for statics, and a test
/// binary may also be killed outright, so in-process cleanup cannot be relied on.
#[allow(
    clippy::zombie_processes,
    reason = "the watchdog must outlive this process, so it is deliberately never waited for"
)]
fn spawn_watchdog(dir: &Path, stop_cluster: &[String]) -> Result<(), String> {
    // Positional arguments instead of string interpolation, so no path needs quoting.
    // HUP and INT are ignored so that closing the terminal or pressing Ctrl-C (which stops the
    // tests) does not stop the cleanup; the watchdog ends by itself once the tests are gone.
    const SCRIPT: &str = r#"trap '' HUP INT
pid=$1; dir=$2; shift 2
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
"$@" >/dev/null 2>&1
rm -rf "$dir""#;
    use std::os::unix::process::CommandExt as _;
    Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("rollcall-pg-watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .args(stop_cluster)
        .current_dir(dir)
        // Detached from our standard streams (cargo must not wait for them to close) and from
        // our process group (signals aimed at the test run must not reach it).
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("cannot start the cleanup watchdog: {e}"))
}

/// Runs `argv` to completion in `cwd`; `Ok(stdout)` on success, else a description including
/// its output. The working directory matters: as root the commands run as `postgres`, which
/// may not be allowed into the directory the tests were started from.
fn run(cwd: &Path, argv: &[String]) -> Result<String, String> {
    let (program, args) = argv.split_first().expect("a command line has a program");
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` exited with {}:\n{}{}",
            argv.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn is_on_path(program: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join(program).is_file())
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn path_str(path: &Path) -> Result<String, String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("temporary path {} is not UTF-8", path.display()))
}

/// Quotes `word` for a POSIX shell.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database(
                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
                "x"
            ),
            "postgres://postgres@127.0.0.1:5432/x?sslmode=disable"
        );
    }

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn shell_quote_survives_single_quotes() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }
}
