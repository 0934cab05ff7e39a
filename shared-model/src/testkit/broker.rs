//! The broker in tests: deleting a test's queues and exchanges, listening to and publishing
//! events.

use std::time::Duration;

use crate::config::AmqpConfig;
use crate::service::ServiceSpec;

use super::{TestDb, config};

/// Deletes queues (and their dead-letter queues) of a test.
pub async fn delete_queues(cfg: &AmqpConfig, queues: &[String]) {
    use lapin::options::QueueDeleteOptions;
    let Ok(conn) = crate::bus::connect(cfg, "test-cleanup").await else {
        return;
    };
    let Ok(ch) = conn.create_channel().await else {
        return;
    };
    for q in queues {
        let _ = ch
            .queue_delete(q.clone().into(), QueueDeleteOptions::default())
            .await;
        let _ = ch
            .queue_delete(format!("{q}.dlq").into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "done".into()).await;
}

/// Deletes a test's exchanges and queues. Call it after the service using them has stopped,
/// or its relay declares the exchanges again.
pub async fn delete_broker_names(cfg: &AmqpConfig, queues: &[String]) {
    use lapin::options::ExchangeDeleteOptions;
    delete_queues(cfg, queues).await;
    let Ok(conn) = crate::bus::connect(cfg, "test-cleanup").await else {
        return;
    };
    let Ok(ch) = conn.create_channel().await else {
        return;
    };
    for x in [&cfg.exchange, &cfg.dead_letter_exchange] {
        let _ = ch
            .exchange_delete(x.clone().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "done".into()).await;
}

/// Declares a quorum queue bound to `bindings` on the test's exchange and returns a consumer
/// (delete the queue with [`delete_queues`] when done).
pub async fn listen(
    cfg: &AmqpConfig,
    queue: &str,
    bindings: &[&str],
) -> (lapin::Connection, lapin::Consumer) {
    use lapin::options::BasicConsumeOptions;
    use lapin::types::FieldTable;
    let conn = crate::bus::connect(cfg, "test-listener").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let bindings: Vec<String> = bindings.iter().map(|s| s.to_string()).collect();
    crate::bus::declare_queue(&ch, cfg, queue, &bindings)
        .await
        .unwrap();
    let consumer = ch
        .basic_consume(
            queue.into(),
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (conn, consumer)
}

/// Receives `n` deliveries (acking each) or fails after `timeout`.
pub async fn receive(
    consumer: &mut lapin::Consumer,
    n: usize,
    timeout: Duration,
) -> Vec<lapin::message::Delivery> {
    use futures_util::StreamExt;
    use lapin::options::BasicAckOptions;
    let mut out = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < n {
        let d = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("received {} of {n} messages before the timeout", out.len()))
            .expect("consumer stream ended")
            .expect("delivery");
        d.ack(BasicAckOptions::default()).await.unwrap();
        out.push(d);
    }
    out
}

/// Publishes events to the test's exchange with publisher confirms, as a service's relay would.
pub async fn publish(cfg: &AmqpConfig, events: &[crate::envelope::CloudEvent]) {
    use lapin::BasicProperties;
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    let conn = crate::bus::connect(cfg, "test-publisher").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for e in events {
        let confirm = ch
            .basic_publish(
                cfg.exchange.clone().into(),
                e.event_type.clone().into(),
                BasicPublishOptions::default(),
                &serde_json::to_vec(e).unwrap(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }
    conn.close(200, "done".into()).await.ok();
}

/// The queues a service's consumers declare under `amqp`.
pub fn service_queues(spec: &ServiceSpec, db: &TestDb, amqp: &AmqpConfig) -> Vec<String> {
    crate::service::kit(spec, config(db, amqp.clone(), false))
        .map(|k| {
            k.consumers()
                .iter()
                .map(|c| crate::bus::queue_name(amqp, c))
                .collect()
        })
        .unwrap_or_default()
}
