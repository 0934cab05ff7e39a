//! The outbox relay under concurrent writers that commit out of order.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;
use shared_model::config::OutboxConfig;
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
    outbox::enqueue(&mut tx, &e).await.unwrap();
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
    let relay = Relay {
        service: "test",
        pool: db.pool.clone(),
        amqp: amqp.clone(),
        outbox: OutboxConfig {
            enabled: true,
            batch_size: 50,
            poll_interval_ms: 200,
        },
    };
    let relay_task = tokio::spawn(relay.run(stop.clone()));

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

    stop.cancel();
    relay_task.await.unwrap();
    testkit::delete_broker_names(&amqp, &[queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_relay_leads_per_database() {
    let db = TestDb::new(&Migrator::with_migrations(Vec::new())).await;
    let amqp = testkit::amqp_config("leader");
    let queue = format!("{}.observer", amqp.queue_prefix);
    let (_conn, mut consumer) = listen(&amqp, &queue, &["#"]).await;
    let stop = CancellationToken::new();
    let cfg = OutboxConfig {
        enabled: true,
        batch_size: 10,
        poll_interval_ms: 100,
    };
    let mut relays = Vec::new();
    for _ in 0..3 {
        let r = Relay {
            service: "test",
            pool: db.pool.clone(),
            amqp: amqp.clone(),
            outbox: cfg.clone(),
        };
        relays.push(tokio::spawn(r.run(stop.clone())));
    }
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
    stop.cancel();
    for r in relays {
        r.await.unwrap();
    }
    testkit::delete_broker_names(&amqp, &[queue]).await;
}
