//! Dead letters: listing a consumer's dead-letter queue and replaying it.

use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use serde::Serialize;

use super::{connect, queue_name};
use crate::config::AmqpConfig;

/// A message in a dead-letter queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub routing_key: String,
    pub message_id: Option<String>,
    /// Why the broker dead-lettered it (`delivery_limit`, `rejected`, ...).
    pub reason: Option<String>,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

/// Lists up to `limit` dead letters of a consumer without removing them.
pub async fn list_dead_letters(
    cfg: &AmqpConfig,
    consumer: &str,
    limit: usize,
) -> anyhow::Result<Vec<DeadLetter>> {
    let dlq = format!("{}.dlq", queue_name(cfg, consumer));
    let conn = connect(cfg, "dead-letter-list").await?;
    let ch = conn.create_channel().await?;
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(msg) = ch
            .basic_get(dlq.clone().into(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        let d = &msg.delivery;
        let reason = d.properties.headers().as_ref().and_then(|h| {
            h.inner().get("x-first-death-reason").and_then(|v| match v {
                AMQPValue::LongString(s) => Some(s.to_string()),
                _ => None,
            })
        });
        out.push(DeadLetter {
            routing_key: d.routing_key.to_string(),
            message_id: d.properties.message_id().as_ref().map(|m| m.to_string()),
            reason,
            body: serde_json::from_slice(&d.data).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&d.data).into())
            }),
        });
    }
    // Closing the channel returns every unacknowledged message to the queue.
    let _ = conn.close(200, ShortString::from("listed")).await;
    Ok(out)
}

/// Moves up to `limit` dead letters back onto the consumer's queue; returns how many.
pub async fn replay_dead_letters(
    cfg: &AmqpConfig,
    consumer: &str,
    limit: usize,
) -> anyhow::Result<usize> {
    let queue = queue_name(cfg, consumer);
    let dlq = format!("{queue}.dlq");
    let conn = connect(cfg, "dead-letter-replay").await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut n = 0;
    while n < limit {
        let Some(msg) = ch
            .basic_get(dlq.clone().into(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        let d = msg.delivery;
        let mut props: BasicProperties = d.properties.clone();
        if let Some(h) = props.headers().clone() {
            let mut kept = FieldTable::default();
            for (k, v) in h.inner() {
                if !k.as_str().starts_with("x-") {
                    kept.insert(k.clone(), v.clone());
                }
            }
            props = props.with_headers(kept);
        }
        // Straight to the consumer's queue (default exchange), not to every subscriber again.
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.clone().into(),
                BasicPublishOptions::default(),
                &d.data,
                props,
            )
            .await?
            .await?;
        if !confirm.is_ack() {
            anyhow::bail!("the broker refused a replayed message");
        }
        d.acker.ack(BasicAckOptions::default()).await?;
        n += 1;
    }
    let _ = conn.close(200, ShortString::from("replayed")).await;
    Ok(n)
}
