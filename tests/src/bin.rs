//! The real `rollcall` binary: built once per test process, run as a server or as a CLI.
//!
//! The binary belongs to the `api` package, so Cargo's `CARGO_BIN_EXE_rollcall` (which only
//! exists for the tests of the package that owns the binary) is not available here; instead
//! the first caller runs `cargo build -p api --bin rollcall` itself. Cargo releases its build
//! lock before it runs test binaries, so this nested build does not deadlock; it only waits
//! if another cargo process is building at the same moment.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// How long [`Server::start`] waits for the server to listen and report healthy.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The Cargo workspace root (the parent of this package's directory).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the rollcall-tests package lives one level below the workspace root")
}

/// Path to an up-to-date `rollcall` binary, built on first use (in release mode when this test
/// binary was, so both come from the same profile).
///
/// # Panics
///
/// If the build fails; the panic message carries Cargo's output.
pub fn rollcall_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build_rollcall).clone()
}

fn build_rollcall() -> PathBuf {
    let release = !cfg!(debug_assertions);
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(workspace_root())
        .args(["build", "-p", "api", "--bin", "rollcall"])
        // JSON on stdout names the executable exactly, wherever the target directory is
        // configured to be; diagnostics are still rendered as text on stderr.
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null());
    // Pin the toolchain that compiled these tests. `cargo test` (through rustup) passes
    // RUSTUP_TOOLCHAIN on, but a test binary started some other way (an IDE, by hand) lacks
    // it, and then rustup's `rustc` proxy honours the rust-toolchain.toml that some
    // dependencies ship (sqlx pins 1.78) when cargo compiles them inside their own directory.
    if std::env::var_os("RUSTUP_TOOLCHAIN").is_none() {
        if let Some(toolchain) = option_env!("RUSTUP_TOOLCHAIN") {
            cargo.env("RUSTUP_TOOLCHAIN", toolchain);
        }
    }
    if release {
        cargo.arg("--release");
    }
    let output = cargo
        .output()
        .expect("cannot run cargo (the one that compiled these tests) to build rollcall");
    assert!(
        output.status.success(),
        "`cargo build -p api --bin rollcall` failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let reported = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "rollcall"
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from));
    // Fallback should Cargo's JSON ever change: the conventional location.
    let path = reported.unwrap_or_else(|| {
        let target_dir = option_env!("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        target_dir
            .join(if release { "release" } else { "debug" })
            .join("rollcall")
    });
    assert!(
        path.is_file(),
        "cargo built rollcall but {} does not exist",
        path.display()
    );
    path
}

/// Runs `rollcall --database-url <database_url> <args...>` to completion and returns its
/// output (blocking; the CLI is short-lived).
///
/// # Panics
///
/// If the binary cannot be built or started; a non-zero exit is returned, not a panic.
pub fn run_cli(database_url: &str, args: &[&str]) -> Output {
    run_cli_with_env(database_url, args, &[])
}

fn run_cli_with_env(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(rollcall_bin())
        .arg("--database-url")
        .arg(database_url)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("cannot start the rollcall binary")
}

/// A running `rollcall serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    /// Where it listens, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub base_url: String,
    child: Child,
}

impl Server {
    /// Migrates `database_url`, starts `rollcall serve` on a free port against it, and returns
    /// once `GET /health` answers 200. `extra_env` is set for both commands (e.g.
    /// `&[("RUST_LOG", "debug")]`).
    ///
    /// The server's standard error (its logs) is forwarded line by line to the test's, which
    /// libtest shows when the test fails.
    ///
    /// # Panics
    ///
    /// If migration fails, or the server exits or is not healthy within 30 seconds.
    pub async fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Server {
        let migrate = run_cli_with_env(database_url, &["migrate"], extra_env);
        assert!(
            migrate.status.success(),
            "`rollcall migrate` failed ({}):\nstdout:\n{}\nstderr:\n{}",
            migrate.status,
            String::from_utf8_lossy(&migrate.stdout),
            String::from_utf8_lossy(&migrate.stderr)
        );

        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        let mut child = Command::new(rollcall_bin())
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--database-url",
                database_url,
            ])
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start `rollcall serve`");
        let stdout = child.stdout.take().expect("stdout was piped");
        let stderr = child.stderr.take().expect("stderr was piped");
        // From here on, a panic drops `server`, which kills the child.
        let mut server = Server {
            base_url: String::new(),
            child,
        };

        // Plain threads, not tokio tasks: they must keep draining the pipes (a full pipe would
        // block the server) for as long as the child lives, whatever happens to this runtime.
        // Threads spawned from a test inherit its output capture, so `eprintln!` lands in the
        // test's output.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[rollcall serve] {line}");
            }
        });
        let (listening_tx, listening_rx) = tokio::sync::oneshot::channel::<String>();
        std::thread::spawn(move || {
            let mut listening_tx = Some(listening_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(start) = line.find("listening on http://") {
                    if let Some(tx) = listening_tx.take() {
                        let url = line[start + "listening on ".len()..]
                            .trim()
                            .trim_end_matches('/');
                        // The receiver is gone only if start() already gave up.
                        let _ = tx.send(url.to_owned());
                        continue;
                    }
                }
                eprintln!("[rollcall serve stdout] {line}");
            }
            // Dropping an unused sender tells start() that stdout closed before "listening".
        });

        server.base_url = match tokio::time::timeout_at(deadline, listening_rx).await {
            Ok(Ok(url)) => url,
            Ok(Err(_closed)) => panic!(
                "`rollcall serve` closed its stdout without printing \"listening on http://\" \
                 (exit status: {:?}); its stderr is above",
                server.child.try_wait()
            ),
            Err(_elapsed) => panic!(
                "`rollcall serve` did not print \"listening on http://\" within {STARTUP_TIMEOUT:?}"
            ),
        };

        // No proxy: an HTTP(S)_PROXY set for the CI machine must not intercept loopback calls.
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a reqwest client without TLS or proxy settings always builds");
        let health = format!("{}/health", server.base_url);
        loop {
            let last = match client
                .get(&health)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(response) if response.status() == reqwest::StatusCode::OK => return server,
                Ok(response) => format!("status {}", response.status()),
                Err(error) => error.to_string(),
            };
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("`rollcall serve` exited with {status} before {health} answered 200");
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("{health} did not answer 200 within {STARTUP_TIMEOUT:?}; last: {last}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `base_url` joined with `path` (which should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Already-exited children make these fail; either way the process is gone and reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
