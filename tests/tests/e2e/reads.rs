//! The kit's pipelined reads and writes (`db::Reads`): the same row-level security as
//! `db::begin`, a read-only frame for reads, a write committed or rolled back whole, and no
//! connection reused after a frame that did not complete.

use std::time::{Duration, Instant};

use shared_model::config::DatabaseConfig;
use shared_model::db::{ReadError, ReadRow, Reads, Scope};
use shared_model::ids::CustomerId;
use shared_model::testkit::TestDb;
use sqlx::migrate::{Migration, MigrationType, Migrator};

const NOTES: &str = "
CREATE TABLE notes (customer_id uuid NOT NULL, body text NOT NULL);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE notes FORCE ROW LEVEL SECURITY;
CREATE POLICY notes_tenant ON notes
    USING (customer_id = (SELECT app_current_customer()) OR (SELECT app_is_platform_admin()));
ALTER TABLE notes ADD CONSTRAINT notes_body_key UNIQUE (body);
";

const BODIES: &str = "SELECT body FROM notes ORDER BY body";

struct Fixture {
    db: TestDb,
    a: CustomerId,
    b: CustomerId,
}

async fn fixture() -> Fixture {
    let notes = Migrator::with_migrations(vec![Migration::new(
        1000,
        "notes".into(),
        MigrationType::Simple,
        sqlx::SqlStr::from_static(NOTES),
        false,
    )]);
    let db = TestDb::new(&notes).await;
    let (a, b) = (CustomerId::new(), CustomerId::new());
    let mut su = db.superuser().await;
    sqlx::query("INSERT INTO notes VALUES ($1, 'a1'), ($1, 'a2'), ($2, 'b1')")
        .bind(a)
        .bind(b)
        .execute(&mut su)
        .await
        .unwrap();
    Fixture { db, a, b }
}

fn bodies(rows: Vec<ReadRow>) -> Vec<String> {
    rows.iter().map(|r| r.get::<String>(0)).collect()
}

fn pool(cfg: DatabaseConfig) -> Reads {
    Reads::new(&cfg).expect("read pool settings")
}

#[tokio::test]
async fn a_read_sees_only_its_scope_s_rows_in_a_read_only_frame() {
    let f = fixture().await;
    let reads = pool(f.db.config());
    let a = bodies(reads.all(Scope::Tenant(f.a), BODIES, &[]).await.unwrap());
    assert_eq!(a, ["a1", "a2"]);
    let b = bodies(reads.all(Scope::Tenant(f.b), BODIES, &[]).await.unwrap());
    assert_eq!(b, ["b1"]);
    let all = bodies(reads.all(Scope::PlatformAdmin, BODIES, &[]).await.unwrap());
    assert_eq!(all, ["a1", "a2", "b1"]);
    // Asking for another tenant's rows by name finds nothing.
    let other = reads
        .one(
            Scope::Tenant(f.a),
            "SELECT body FROM notes WHERE customer_id = $1",
            &[&f.b],
        )
        .await
        .unwrap();
    assert!(other.is_none());
    // The scope is the transaction's, and the transaction cannot write.
    let setting = reads
        .one(
            Scope::Tenant(f.b),
            "SELECT current_setting('app.customer_id')",
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(setting.get::<String>(0), f.b.to_string());
    let write = reads
        .all(
            Scope::Tenant(f.a),
            "INSERT INTO notes VALUES ($1, 'a3') RETURNING body",
            &[&f.a],
        )
        .await;
    assert!(
        matches!(&write, Err(ReadError::Db(e)) if e.to_string().contains("read-only")),
        "{write:?}"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&mut f.db.superuser().await)
        .await
        .unwrap();
    assert_eq!(count, 3);
    // Every read ran on the one pooled connection, which is still usable.
    assert_eq!(reads.idle_connections(), 1);
}

#[tokio::test]
async fn columns_are_found_by_name_in_any_order() {
    let f = fixture().await;
    let reads = pool(f.db.config());
    let row = reads
        .one(
            Scope::Tenant(f.a),
            "SELECT customer_id, body, 7::int4 AS n FROM notes WHERE body = 'a2'",
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    // In order, backwards, repeated, after a miss: each name finds its own column.
    for _ in 0..2 {
        assert_eq!(row.try_get::<CustomerId>("customer_id").unwrap(), f.a);
        assert_eq!(row.try_get::<String>("body").unwrap(), "a2");
        assert_eq!(row.try_get::<i32>("n").unwrap(), 7);
    }
    assert_eq!(row.try_get::<i32>("n").unwrap(), 7);
    assert_eq!(row.try_get::<String>("body").unwrap(), "a2");
    assert!(
        matches!(row.try_get::<String>("nope"), Err(ReadError::Decode(m)) if m.contains("nope"))
    );
    assert_eq!(row.try_get::<CustomerId>("customer_id").unwrap(), f.a);
    assert!(matches!(
        row.try_get::<i32>("body"),
        Err(ReadError::Decode(_))
    ));
}

#[tokio::test]
async fn a_failed_read_leaves_its_connection_clean_and_a_cancelled_one_closes_it() {
    let f = fixture().await;
    let mut cfg = f.db.config();
    cfg.read_connections = 1;
    let reads = pool(cfg);
    let err = reads
        .one(Scope::Tenant(f.a), "SELECT 1 / 0", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("division by zero"), "{err}");
    assert_eq!(reads.idle_connections(), 1);
    // Parameters that do not fit the statement are refused before anything is sent, and leave
    // nothing behind for the next read (here one that prepares a statement first).
    let pid = "SELECT pg_backend_pid()::text";
    let backend = reads
        .one(Scope::Tenant(f.a), pid, &[])
        .await
        .unwrap()
        .unwrap();
    let backend = backend.get::<String>(0);
    let by_customer = "SELECT body FROM notes WHERE customer_id = $1 ORDER BY body";
    let missing = reads.all(Scope::Tenant(f.a), by_customer, &[]).await;
    assert!(
        matches!(&missing, Err(ReadError::Decode(m)) if m.contains("1 parameters, 0 given")),
        "{missing:?}"
    );
    let wrong_type = reads.all(Scope::Tenant(f.a), by_customer, &[&"a"]).await;
    assert!(
        matches!(&wrong_type, Err(ReadError::Decode(_))),
        "{wrong_type:?}"
    );
    let count = reads
        .one(Scope::Tenant(f.a), "SELECT count(*)::text FROM notes", &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count.get::<String>(0), "2");
    let same = reads
        .one(Scope::Tenant(f.a), pid, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        same.get::<String>(0),
        backend,
        "the connection was not replaced"
    );
    let a = bodies(reads.all(Scope::Tenant(f.a), BODIES, &[]).await.unwrap());
    assert_eq!(a, ["a1", "a2"]);

    // The server ends the idle connection (a restart, an idle timeout): the next read notices
    // and repeats itself once on a new connection.
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()
            AND application_name = 'customer-platform'",
    )
    .fetch_all(&mut f.db.superuser().await)
    .await
    .unwrap();
    assert_eq!(ended, [true]);
    let b = bodies(reads.all(Scope::Tenant(f.b), BODIES, &[]).await.unwrap());
    assert_eq!(b, ["b1"]);
    assert_eq!(reads.idle_connections(), 1);

    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        reads.one(Scope::Tenant(f.a), "SELECT pg_sleep(3)::text", &[]),
    )
    .await;
    assert!(cancelled.is_err());
    assert_eq!(
        reads.idle_connections(),
        0,
        "a connection whose frame did not finish must not be reused"
    );
    let started = Instant::now();
    let b = bodies(reads.all(Scope::Tenant(f.b), BODIES, &[]).await.unwrap());
    assert_eq!(b, ["b1"]);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_write_commits_in_its_scope_or_rolls_back_whole() {
    use shared_model::error::AsConstraint;
    const ADD: &str = "WITH n AS (INSERT INTO notes VALUES ($1, $2) RETURNING body) \
                       SELECT body FROM n";
    const ADD_TWO: &str = "WITH first AS (INSERT INTO notes VALUES ($1, $2)) \
                           INSERT INTO notes VALUES ($1, $3)";
    let f = fixture().await;
    let db = pool(f.db.config());
    let added = db
        .write(Scope::Tenant(f.a), ADD, &[&f.a, &"a3"])
        .await
        .unwrap();
    assert_eq!(bodies(added), ["a3"], "the statement's rows come back");
    // Committed: another connection sees it.
    let mut su = f.db.superuser().await;
    let committed: Vec<String> = sqlx::query_scalar("SELECT body FROM notes ORDER BY body")
        .fetch_all(&mut su)
        .await
        .unwrap();
    assert_eq!(committed, ["a1", "a2", "a3", "b1"]);

    // A tenant cannot write another tenant's row.
    let err = db
        .write(Scope::Tenant(f.a), ADD, &[&f.b, &"b2"])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ReadError::Db(e) if e.code == "42501"),
        "row-level security refuses it: {err}"
    );
    // A violation rolls back the whole statement and names its constraint.
    let err = db
        .write(Scope::Tenant(f.a), ADD_TWO, &[&f.a, &"a4", &"a1"])
        .await
        .unwrap_err();
    assert_eq!(err.constraint(), Some("notes_body_key"), "{err}");
    let after: Vec<String> = sqlx::query_scalar("SELECT body FROM notes ORDER BY body")
        .fetch_all(&mut su)
        .await
        .unwrap();
    assert_eq!(after, committed, "nothing of the failed writes remains");
    // The scope ended with each write; the one connection served all of them.
    let setting = db
        .one(
            Scope::PlatformAdmin,
            "SELECT current_setting('app.customer_id')",
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(setting.get::<String>(0), "");
    assert_eq!(db.idle_connections(), 1);

    // A write on a connection the server has ended fails and is not repeated (the server might
    // have committed it); the pool drops that connection and the next write opens a new one.
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()
            AND application_name = 'customer-platform'",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();
    assert_eq!(ended, [true]);
    let err = db
        .write(Scope::Tenant(f.a), ADD, &[&f.a, &"a5"])
        .await
        .unwrap_err();
    assert!(
        matches!(err, ReadError::Io(_) | ReadError::Protocol(_)),
        "{err}"
    );
    assert_eq!(db.idle_connections(), 0);
    let again = db
        .write(Scope::Tenant(f.a), ADD, &[&f.a, &"a6"])
        .await
        .unwrap();
    assert_eq!(bodies(again), ["a6"]);
    let after: Vec<String> = sqlx::query_scalar("SELECT body FROM notes ORDER BY body")
        .fetch_all(&mut su)
        .await
        .unwrap();
    assert_eq!(after, ["a1", "a2", "a3", "a6", "b1"]);
}

#[tokio::test]
async fn a_full_pool_answers_busy_after_the_acquire_timeout() {
    let f = fixture().await;
    let mut cfg = f.db.config();
    cfg.read_connections = 1;
    cfg.acquire_timeout_ms = 200;
    let reads = pool(cfg);
    let holder = {
        let reads = reads.clone();
        let a = f.a;
        tokio::spawn(async move {
            reads
                .one(Scope::Tenant(a), "SELECT pg_sleep(1)::text", &[])
                .await
                .map(|_| ())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let busy = reads.all(Scope::Tenant(f.a), BODIES, &[]).await;
    assert!(matches!(busy, Err(ReadError::Busy)), "{busy:?}");
    assert!(started.elapsed() >= Duration::from_millis(150));
    holder.await.unwrap().unwrap();
    assert_eq!(reads.idle_connections(), 1);
}

#[tokio::test]
async fn tls_settings_of_the_url_are_honoured() {
    let f = fixture().await;
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut f.db.superuser().await)
        .await
        .unwrap();
    let with = |params: &str| {
        let mut cfg = f.db.config();
        let url = f.db.app_url.replace("sslmode=disable", params);
        cfg.url = shared_model::config::Secret::new(url);
        cfg.acquire_timeout_ms = 3000;
        pool(cfg)
    };
    let encrypted = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let require = with("sslmode=require")
        .one(Scope::Tenant(f.a), encrypted, &[])
        .await;
    if ssl != "on" {
        // A server without TLS refuses a client that requires it.
        assert!(require.is_err(), "{require:?}");
        return;
    }
    let row = require.unwrap().unwrap();
    assert_eq!(row.get::<String>(0), "true");
    // verify-full checks the chain against the public roots: a self-signed server fails.
    let full = with("sslmode=verify-full")
        .one(Scope::Tenant(f.a), encrypted, &[])
        .await;
    assert!(full.is_err(), "{full:?}");
    // A client that only prefers TLS still gets it.
    let prefer = with("sslmode=prefer")
        .one(Scope::Tenant(f.a), encrypted, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(prefer.get::<String>(0), "true");
}
