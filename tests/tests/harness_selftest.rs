//! Self-tests of the helpers in `rollcall-tests` (the harness the other modules rely on).

use rollcall_tests::{bin, pg, sqlite};
use sqlx::{Connection as _, Executor as _, PgConnection, SqliteConnection};

/// Prints which PostgreSQL the tests use, or why they are skipped. Run
/// `cargo test -p rollcall-tests -- --nocapture postgres_tests_are` to see the line; under
/// `CI=true` a missing PostgreSQL makes this test fail instead.
#[test]
fn postgres_tests_are_enabled_or_skip_is_reported() {
    println!("{}", pg::status_line());
}

#[tokio::test]
async fn fresh_databases_are_empty_distinct_and_droppable() {
    let Some(first) = pg::fresh_database().await else {
        return;
    };
    let second = pg::fresh_database()
        .await
        .expect("PostgreSQL was available a moment ago");
    assert_ne!(first.url, second.url);
    assert!(first.name().starts_with("rollcall_test_"));

    let mut conn = PgConnection::connect(&first.url)
        .await
        .expect("the fresh database accepts connections");
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .expect("query current_database()");
    assert_eq!(current, first.name());
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("count tables");
    assert_eq!(tables, 0, "a fresh database has no tables");

    let second_name = second.name().to_owned();
    second.drop_database().await;
    let remaining: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&second_name)
        .fetch_one(&mut conn)
        .await
        .expect("look up the dropped database");
    assert_eq!(remaining, 0, "drop_database removed {second_name}");

    // Dropping forcibly disconnects sessions that are still open, like this one.
    first.drop_database().await;
    assert!(conn.execute("SELECT 1").await.is_err());
}

/// Tests run on many threads, each `#[tokio::test]` on its own runtime; the shared cluster and
/// database creation must cope with that.
#[test]
fn fresh_database_works_from_many_runtimes_at_once() {
    if !pg::postgres_available() {
        return;
    }
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("build a tokio runtime")
                    .block_on(async {
                        let db = pg::fresh_database().await.expect("PostgreSQL is available");
                        let mut conn = PgConnection::connect(&db.url).await.expect("connect");
                        conn.execute("CREATE TABLE t (id int)")
                            .await
                            .expect("create table");
                        conn.close().await.expect("close");
                        db.drop_database().await;
                    });
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("the thread did not panic");
    }
}

#[tokio::test]
async fn sqlite_files_are_created_and_removed() {
    let (url, file) = sqlite::fresh_sqlite_url();
    assert!(url.starts_with("sqlite://") && url.ends_with("?mode=rwc"));
    let path = file.path().to_owned();

    let mut conn = SqliteConnection::connect(&url).await.expect("connect");
    conn.execute(
        "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1)",
    )
    .await
    .expect("write to the database");
    assert!(path.exists(), "mode=rwc created {}", path.display());
    conn.close().await.expect("close");

    drop(file);
    for suffix in ["", "-wal", "-shm"] {
        let companion = format!("{}{suffix}", path.display());
        assert!(
            !std::path::Path::new(&companion).exists(),
            "{companion} was removed"
        );
    }
}

#[test]
fn rollcall_bin_builds_the_real_binary_once() {
    let path = bin::rollcall_bin();
    assert!(path.is_file(), "{} exists", path.display());
    assert_eq!(
        path.file_name().and_then(|name| name.to_str()),
        Some("rollcall")
    );
    assert_eq!(
        bin::rollcall_bin(),
        path,
        "the second call reuses the first build"
    );
}
