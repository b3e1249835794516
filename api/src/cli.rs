//! The `rollcall` command line: parse once, start tracing, run one command.
//! Every failure is one line on standard error and a non-zero exit status.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use projections::projector::{self, PROJECTIONS, ProjectorConfig};
use projections::{Actor, Database, PoolSize};
use tokio::sync::watch;

use crate::auth;
use crate::config::{DatabaseUrl, FileConfig};
use crate::routes::children::{ChildView, History, history_event, parse_as_of};
use crate::{AppState, app, demo};

/// Rollcall: event-sourced case tracking to stop children going missing from education.
#[derive(Debug, Parser)]
#[command(name = "rollcall", version, about)]
pub struct Cli {
    /// postgres://USER@HOST/DB, or sqlite://PATH (the embedded default).
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        default_value = "sqlite://rollcall.db",
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// Log format on standard error.
    #[arg(
        long,
        env = "ROLLCALL_LOG_FORMAT",
        global = true,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// A JSON file with LA policies and school holidays (see docs/operations.md).
    #[arg(long, env = "ROLLCALL_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Database connections per pool.
    #[arg(
        long,
        env = "ROLLCALL_DB_POOL_SIZE",
        global = true,
        default_value_t = 10
    )]
    pub db_pool_size: u32,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending database migrations.
    Migrate,
    /// Run the HTTP service and the projector.
    Serve(ServeArgs),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Rebuild projections or show their status.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Print a child's state and history (JSON), optionally as of a moment.
    Replay {
        child_id: String,
        /// RFC 3339, e.g. 2026-09-03T09:00:00Z.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Fill the database with a synthetic local authority through one school year.
    Demo(demo::DemoArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "ROLLCALL_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Events per projector batch.
    #[arg(long, env = "ROLLCALL_PROJECTOR_BATCH", default_value_t = 1000)]
    pub projector_batch: i64,
    /// Milliseconds between projector polls when nothing woke it.
    #[arg(long, env = "ROLLCALL_PROJECTOR_POLL_MS", default_value_t = 500)]
    pub projector_poll_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once, alone on the last line.
    Create {
        #[arg(long)]
        name: String,
        /// la, school, auditor or analyst.
        #[arg(long)]
        role: String,
        /// LA code (required for la; auditor and analyst without it see all LAs).
        #[arg(long)]
        la: Option<String>,
        /// URN (required for school).
        #[arg(long)]
        school: Option<String>,
    },
    /// List tokens (names, roles and scopes; never the tokens).
    List,
    /// Revoke a token by name.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Rebuild one projection, or all, from the log.
    Rebuild {
        /// child_cases, destination_changes, day_one_no_shows or timeline.
        name: Option<String>,
    },
    /// Each projection's position, lag and error.
    Status,
}

/// A failure of a CLI command: printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Db(#[from] projections::DbError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Token(#[from] auth::TokenError),
    #[error(transparent)]
    Projection(#[from] projector::ProjectionError),
    #[error(transparent)]
    Store(#[from] projections::StoreError),
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    #[error("{0}")]
    Usage(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rollcall: error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rollcall: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn connect(cli: &Cli) -> Result<Database, CliError> {
    let db = Database::connect(
        &cli.database_url.0,
        PoolSize {
            max_connections: cli.db_pool_size.max(2),
        },
    )
    .await?;
    db.migrate().await?;
    Ok(db)
}

/// The actor recorded for what the CLI does on an operator's behalf.
fn cli_actor() -> Actor {
    Actor {
        name: "rollcall-cli".to_owned(),
        role: "system".to_owned(),
        org: "local".to_owned(),
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let file = FileConfig::load(cli.config.as_deref())?;
    let db = connect(&cli).await?;
    let result = match &cli.command {
        Command::Migrate => {
            println!("migrations applied");
            Ok(())
        }
        Command::Serve(args) => serve(db.clone(), &file, args).await,
        Command::Token(command) => token(&db, command).await,
        Command::Projections(command) => projections_command(&db, command).await,
        Command::Replay { child_id, as_of } => replay(&db, child_id, as_of.as_deref()).await,
        Command::Demo(args) => {
            let state = AppState::new(db.clone(), file.calendar(), file.policies.clone());
            demo::run(&state, args).await.map_err(CliError::from)
        }
    };
    db.close().await;
    result
}

async fn token(db: &Database, command: &TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::Create {
            name,
            role,
            la,
            school,
        } => {
            let token =
                auth::create_token(db, name, role, la.as_deref(), school.as_deref()).await?;
            println!("created token {name} (role {role}); it is shown once:");
            println!("{token}");
        }
        TokenCommand::List => {
            println!(
                "{:<24} {:<8} {:<6} {:<8} {:<28} revoked",
                "name", "role", "la", "school", "created"
            );
            for token in auth::list_tokens(db).await? {
                println!(
                    "{:<24} {:<8} {:<6} {:<8} {:<28} {}",
                    token.name,
                    token.role,
                    token.la_code.unwrap_or_else(|| "-".into()),
                    token.school_urn.unwrap_or_else(|| "-".into()),
                    token.created_at,
                    token.revoked_at.unwrap_or_else(|| "-".into())
                );
            }
        }
        TokenCommand::Revoke { name } => {
            auth::revoke_token(db, name).await?;
            println!("revoked token {name}");
        }
    }
    Ok(())
}

async fn projections_command(db: &Database, command: &ProjectionsCommand) -> Result<(), CliError> {
    match command {
        ProjectionsCommand::Rebuild { name } => {
            let names: Vec<&str> = match name {
                Some(name) if PROJECTIONS.contains(&name.as_str()) => vec![name.as_str()],
                Some(name) => {
                    return Err(CliError::Usage(format!(
                        "no projection is named {name:?}; projections are {}",
                        PROJECTIONS.join(", ")
                    )));
                }
                None => PROJECTIONS.to_vec(),
            };
            for name in names {
                let started = std::time::Instant::now();
                let rebuilt = projector::rebuild(db, name, projector::REBUILD_BATCH).await?;
                let seconds = started.elapsed().as_secs_f64();
                let how = match &rebuilt.in_place {
                    None => "in fresh tables, swapped in".to_owned(),
                    Some(why) => format!("in place: {why}"),
                };
                println!(
                    "rebuilt {name}: {} events in {seconds:.2} s ({:.0} events/s), {how}",
                    rebuilt.events,
                    rebuilt.events as f64 / seconds.max(1e-9)
                );
            }
        }
        ProjectionsCommand::Status => {
            println!(
                "{:<20} {:>10} {:>10} {:>8} {:>10}  error",
                "projection", "position", "head", "lag", "applied"
            );
            for status in projector::status(db).await? {
                println!(
                    "{:<20} {:>10} {:>10} {:>8} {:>10}  {}",
                    status.name,
                    status.position,
                    status.head,
                    status.lag_events,
                    status.events_applied,
                    status.error.unwrap_or_else(|| "-".into())
                );
            }
        }
    }
    Ok(())
}

async fn replay(db: &Database, child_id: &str, as_of: Option<&str>) -> Result<(), CliError> {
    let id = uuid::Uuid::parse_str(child_id)
        .map_err(|_| CliError::Usage(format!("{child_id:?} is not a child id (a UUID)")))?;
    let as_of = parse_as_of(as_of).map_err(|error| CliError::Usage(error.to_string()))?;
    let store = projections::Store::new(db.clone());
    let (case, entries) = store.replay(id, as_of).await?;
    if entries.is_empty() && as_of.is_none() {
        return Err(CliError::Usage(format!("no child has id {id}")));
    }
    auth::log_access(
        db,
        &cli_actor(),
        &[&id.to_string()],
        "rollcall replay",
        "replay",
        "cli",
    )
    .await?;
    let today = as_of.map_or_else(|| chrono::Utc::now().date_naive(), |at| at.date_naive());
    let history = History {
        child_id: id.to_string(),
        as_of: as_of.map(|at| at.to_rfc3339()),
        state: ChildView::from_case(&id.to_string(), &case, today),
        events: entries.into_iter().map(history_event).collect(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&history).expect("history serializes")
    );
    Ok(())
}

async fn serve(db: Database, file: &FileConfig, args: &ServeArgs) -> Result<(), CliError> {
    let state = AppState::new(db.clone(), file.calendar(), file.policies.clone());
    let (stop, stopping) = watch::channel(false);
    let config = ProjectorConfig {
        batch_size: args.projector_batch.max(1),
        poll_interval: Duration::from_millis(args.projector_poll_ms.max(10)),
    };
    let mut workers = Vec::new();
    for name in PROJECTIONS {
        workers.push(tokio::spawn(projector::run(
            db.clone(),
            name,
            config,
            stopping.clone(),
        )));
    }
    workers.push(tokio::spawn(projector::listen(
        db.clone(),
        stopping.clone(),
    )));

    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|source| CliError::Bind {
            addr: args.bind,
            source,
        })?;
    let local = listener.local_addr().map_err(CliError::Serve)?;
    tracing::info!(address = %local, backend = ?db.kind(), "serving");
    // Tests and scripts read this line to find the port.
    println!("rollcall listening on http://{local}");
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    tracing::info!("shutting down: stopping projectors at their next checkpoint");
    let _ = stop.send(true);
    for worker in workers {
        let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    }
    served.map_err(CliError::Serve)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
