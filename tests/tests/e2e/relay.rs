//! The outbox relay under concurrent writers that commit out of order.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;
use shared_model::config::{AmqpConfig, OutboxConfig};
use shared_model::db::{self, Scope};
use shared_model::events::{CloudEvent, EventType};
use shared_model::outbox::{self, Relay};
use shared_model::testkit::{self, TestDb};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::{listen, receive};

const WRITTEN: EventType = EventType {
    name: "test.written",
    schema: "urn:test:v1",
};

/// The CloudEvent ids of deliveries, in order.
fn event_ids(deliveries: &[lapin::message::Delivery]) -> Vec<uuid::Uuid> {
    deliveries
        .iter()
        .map(|d| {
            let v: serde_json::Value = serde_json::from_slice(&d.data).unwrap();
            uuid::Uuid::parse_str(v["id"].as_str().unwrap()).unwrap()
        })
        .collect()
}

/// Starts a relay on `db` with `stop` as its shutdown signal.
fn start_relay(
    db: &TestDb,
    amqp: &AmqpConfig,
    batch_size: i64,
    max_unconfirmed: usize,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let relay = Relay {
        service: "test",
        pool: db.pool.clone(),
        amqp: amqp.clone(),
        outbox: OutboxConfig {
            enabled: true,
            batch_size,
            poll_interval_ms: 100,
            max_unconfirmed,
        },
    };
    tokio::spawn(relay.run(stop.clone()))
}

/// Stops the relays and removes the test's broker names.
async fn finish(
    stop: CancellationToken,
    relays: Vec<tokio::task::JoinHandle<()>>,
    amqp: &AmqpConfig,
    queue: String,
) {
    stop.cancel();
    for r in relays {
        r.await.unwrap();
    }
    testkit::delete_broker_names(amqp, &[queue]).await;
}

struct Written {
    event: uuid::Uuid,
    xid: u64,
    committed_at: Instant,
    committed: bool,
}

/// One transaction: write an event, hold the transaction open for `hold`, then commit (or roll
/// back).
async fn writer(pool: sqlx::PgPool, n: usize, hold: Duration, commit: bool) -> Written {
    let mut tx = db::begin(&pool, Scope::System).await.unwrap();
    let e = CloudEvent::new("/test", WRITTEN, n, None, "system", None, &json!({"n": n})).unwrap();
    outbox::write(&mut tx, std::slice::from_ref(&e))
        .await
        .unwrap();
    let xid: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tokio::time::sleep(hold).await;
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
    Written {
        event: e.id.0,
        xid: xid.parse().unwrap(),
        committed_at: Instant::now(),
        committed: commit,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_committed_event_is_published_once_in_transaction_order_and_late_commits_are_not_skipped()
 {
    let db = TestDb::new(&Migrator::with_migrations(Vec::new())).await;
    let amqp = testkit::amqp_config("relay");
    let queue = format!("{}.observer", amqp.queue_prefix);
    let (_conn, mut consumer) = listen(&amqp, &queue, &["#"]).await;
    let stop = CancellationToken::new();
    let relay_task = start_relay(&db, &amqp, 50, 10_000, &stop);

    let mut written = Vec::new();
    for round in 0..4 {
        // 32 concurrent writers; those that start first hold their transaction longest, so
        // commits land in roughly the reverse order of transaction ids. Every 8th rolls back.
        let mut tasks = Vec::new();
        for i in 0..32usize {
            let hold = Duration::from_millis(((32 - i) * 4) as u64);
            tasks.push(tokio::spawn(writer(
                db.pool.clone(),
                round * 32 + i,
                hold,
                i % 8 != 7,
            )));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for t in tasks {
            written.push(t.await.unwrap());
        }
    }
    // One transaction stays open while later ones commit: nothing after it may overtake it.
    let slow = tokio::spawn(writer(
        db.pool.clone(),
        10_000,
        Duration::from_millis(1500),
        true,
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..5 {
        written.push(writer(db.pool.clone(), 20_000 + i, Duration::ZERO, true).await);
    }
    written.push(slow.await.unwrap());

    let mut committed: Vec<&Written> = written.iter().filter(|w| w.committed).collect();
    let out_of_order = committed.iter().any(|a| {
        committed
            .iter()
            .any(|b| a.xid < b.xid && a.committed_at > b.committed_at)
    });
    assert!(
        out_of_order,
        "the writers must commit out of transaction order for this test to mean anything"
    );
    committed.sort_by_key(|w| w.xid);
    let expected: Vec<uuid::Uuid> = committed.iter().map(|w| w.event).collect();

    let deliveries = receive(&mut consumer, expected.len(), Duration::from_secs(30)).await;
    let got = event_ids(&deliveries);
    assert_eq!(
        got.iter().collect::<HashSet<_>>().len(),
        got.len(),
        "no duplicates"
    );
    let rolled_back: HashSet<uuid::Uuid> = written
        .iter()
        .filter(|w| !w.committed)
        .map(|w| w.event)
        .collect();
    assert!(
        got.iter().all(|id| !rolled_back.contains(id)),
        "rolled-back events are never published"
    );
    assert_eq!(
        got, expected,
        "published exactly once each, in transaction order"
    );
    // Nothing more arrives, and the outbox is empty.
    use futures_util::StreamExt;
    assert!(
        tokio::time::timeout(Duration::from_millis(700), consumer.next())
            .await
            .is_err()
    );
    let mut su = db.superuser().await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(left, 0);
    finish(stop, vec![relay_task], &amqp, queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_relay_leads_per_database() {
    let db = TestDb::new(&Migrator::with_migrations(Vec::new())).await;
    let amqp = testkit::amqp_config("leader");
    let queue = format!("{}.observer", amqp.queue_prefix);
    let (_conn, mut consumer) = listen(&amqp, &queue, &["#"]).await;
    let stop = CancellationToken::new();
    // Fewer unconfirmed rows allowed than three batches: the leader waits for confirmations
    // mid-stream.
    let relays = (0..3)
        .map(|_| start_relay(&db, &amqp, 10, 25, &stop))
        .collect();
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(writer(db.pool.clone(), i, Duration::ZERO, true).await.event);
    }
    let got = event_ids(&receive(&mut consumer, 200, Duration::from_secs(20)).await);
    assert_eq!(
        got, ids,
        "three relays, one leader: each event once, in order"
    );
    use futures_util::StreamExt;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), consumer.next())
            .await
            .is_err()
    );
    finish(stop, relays, &amqp, queue).await;
}

/// A queue that refuses messages (full, `reject-publish`) makes the broker nack them: the relay
/// keeps every row it has no confirmation for, starts again from the oldest, and once the queue
/// has room every event arrives, first deliveries in write order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacked_events_stay_in_the_outbox_and_are_published_again() {
    use futures_util::StreamExt;
    use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions};
    use lapin::options::{BasicQosOptions, QueueDeclareOptions};
    use lapin::types::{AMQPValue, FieldTable};

    let db = TestDb::new(&Migrator::with_migrations(Vec::new())).await;
    let amqp = testkit::amqp_config("nack");
    let queue = format!("{}.full", amqp.queue_prefix);
    let conn = shared_model::bus::connect(&amqp, "test-full")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    shared_model::bus::declare_exchanges(&ch, &amqp)
        .await
        .unwrap();
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(5));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    let declare = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(queue.clone().into(), declare, args)
        .await
        .unwrap();
    ch.queue_bind(
        queue.clone().into(),
        amqp.exchange.clone().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();

    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(writer(db.pool.clone(), i, Duration::ZERO, true).await.event);
    }
    let stop = CancellationToken::new();
    let relay_task = start_relay(&db, &amqp, 8, 10_000, &stop);

    // The queue takes 5 and refuses the rest; no batch is wholly confirmed, so no row is deleted.
    let mut su = db.superuser().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = ch
            .queue_declare(
                queue.clone().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count();
        if ready == 5 {
            break;
        }
        assert!(Instant::now() < deadline, "the queue never filled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The queue took the first 5; every later event was refused and must still be in the
    // outbox. (Rows of a batch the broker wholly accepted may be gone: a transaction elsewhere
    // in the cluster can hold back the snapshot's xmin, so a first batch may be smaller.)
    let left: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT event_id FROM outbox")
        .fetch_all(&mut su)
        .await
        .unwrap();
    assert!(
        ids[5..].iter().all(|id| left.contains(id)),
        "rows without a confirmation stay in the outbox ({} of 20 left)",
        left.len()
    );

    // Room again: every event arrives (some twice), first deliveries in write order.
    ch.basic_qos(100, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.clone().into(),
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut first = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while first.len() < ids.len() {
        let d = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("received {} of 20 events", first.len()))
            .unwrap()
            .unwrap();
        d.ack(BasicAckOptions::default()).await.unwrap();
        let id = event_ids(std::slice::from_ref(&d))[0];
        if !first.contains(&id) {
            first.push(id);
        }
    }
    assert_eq!(first, ids, "every event, first deliveries in write order");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&mut su)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} confirmed rows were never deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = conn.close(200, "done".into()).await;
    finish(stop, vec![relay_task], &amqp, queue).await;
}

/// Transaction ids order numerically, also where their decimal forms have different lengths
/// (`9 < 10 < 100`), and the relay's position survives batches of one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_go_out_in_numeric_transaction_id_order_across_batches() {
    let db = TestDb::new(&Migrator::with_migrations(Vec::new())).await;
    let amqp = testkit::amqp_config("xidorder");
    let queue = format!("{}.observer", amqp.queue_prefix);
    let (_conn, mut consumer) = listen(&amqp, &queue, &["#"]).await;
    let mut su = db.superuser().await;
    let mut by_txid = Vec::new();
    // Inserted (so numbered by `id`) in the reverse of their transaction order.
    for txid in [100, 10, 9] {
        let id = uuid::Uuid::now_v7();
        let payload = serde_json::to_vec(&json!({"id": id, "txid": txid})).unwrap();
        sqlx::query(
            "INSERT INTO outbox (txid, event_id, routing_key, payload)
             VALUES ($1::text::xid8, $2, 'test.written', $3)",
        )
        .bind(txid.to_string())
        .bind(id)
        .bind(payload)
        .execute(&mut su)
        .await
        .unwrap();
        by_txid.insert(0, id);
    }
    let stop = CancellationToken::new();
    let relay_task = start_relay(&db, &amqp, 1, 10_000, &stop);
    let got = event_ids(&receive(&mut consumer, 3, Duration::from_secs(10)).await);
    assert_eq!(got, by_txid, "published in the order 9, 10, 100");
    use futures_util::StreamExt;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), consumer.next())
            .await
            .is_err(),
        "each once"
    );
    finish(stop, vec![relay_task], &amqp, queue).await;
}

/// After a burst the outbox heap holds every published row, deleted, until vacuum runs (here:
/// never, and never analyzed either, so the planner works from the table's size). The relay's batch statement must read only index
/// pages and the live rows then: a plan that scans the heap makes every batch cost the whole
/// burst (docs/performance.md).
#[tokio::test]
async fn the_relays_batch_statement_does_not_read_the_dead_rows_of_a_burst() {
    let db = TestDb::new(&Migrator::with_migrations(Vec::new())).await;
    let mut su = db.superuser().await;
    let insert = |n: i64| {
        sqlx::query(
            "INSERT INTO outbox (event_id, routing_key, payload)
             SELECT gen_random_uuid(), 'test.written', convert_to(repeat('x', 1000), 'UTF8')
               FROM generate_series(1, $1)",
        )
        .bind(n)
    };
    sqlx::query("ALTER TABLE outbox SET (autovacuum_enabled = false)")
        .execute(&mut su)
        .await
        .unwrap();
    // Many writers' transactions, as a burst is.
    for _ in 0..200 {
        insert(100).execute(&mut su).await.unwrap();
    }
    // The burst, published and deleted; the relay stands after its last row.
    let (after_txid, after_id): (String, i64) =
        sqlx::query_as("SELECT txid::text, id FROM outbox ORDER BY txid DESC, id DESC LIMIT 1")
            .fetch_one(&mut su)
            .await
            .unwrap();
    sqlx::query("DELETE FROM outbox")
        .execute(&mut su)
        .await
        .unwrap();
    insert(10).execute(&mut su).await.unwrap();

    // The first probe through the deleted rows' index entries marks them dead, once no
    // transaction of this database can still see the rows (an auto-analyze of another table
    // can hold that back for a moment); from then on the probe skips them. A heap scan reads
    // every page however often it runs, so the statement must get cheap within a few tries.
    let started = std::time::Instant::now();
    loop {
        let mut tx = db::begin(&db.pool, Scope::System).await.unwrap();
        let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
            outbox::BATCH_SQL
        )))
        .bind(256_i64)
        .bind(&after_txid)
        .bind(after_id)
        .bind(Vec::<i64>::new())
        .bind("1")
        .bind(1_i64)
        .bind("0")
        .bind(0_i64)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        drop(tx);
        let top = &plan[0]["Plan"];
        let pages = top["Shared Hit Blocks"].as_f64().unwrap()
            + top["Shared Read Blocks"].as_f64().unwrap();
        // (Whether the 10 rows are read or wait depends on the cluster's oldest open
        // transaction: the pages read are the point either way.) 20,000 rows of 1 kB fill
        // about 2,900 heap pages; the live rows and the index need a few.
        if pages < 100.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{pages} pages read for 10 rows, 10 s after the burst: {plan:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
