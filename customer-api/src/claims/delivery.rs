//! Delivers claims documents to the auth service's webhook, signed per Standard Webhooks
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, with the key from a `whsec_<base64>` secret).
//!
//! One deliverer at a time across replicas (advisory lock). For each customer it sends only
//! the newest undelivered version, marking older undelivered ones superseded, so versions
//! never arrive out of order. A failed attempt is retried with exponential backoff under the
//! same `webhook-id`, so a receiver that processed an attempt whose answer was lost can
//! recognise the retry.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use shared_model::ids::CustomerId;
use sqlx::PgPool;
use sqlx::types::Json;
use tokio_util::sync::CancellationToken;

const DELIVERY_LOCK_KEY: i64 = 0x0063_6c61_696d; // "claim"

/// Where and how to deliver.
#[derive(Clone)]
pub struct Webhook {
    pub url: String,
    pub key: Vec<u8>,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub poll: Duration,
    pub client: reqwest::Client,
}

/// The key of a `whsec_<base64>` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret
        .strip_prefix("whsec_")
        .ok_or("must start with whsec_")?;
    let key = STANDARD
        .decode(b64)
        .map_err(|_| "must be whsec_ followed by base64")?;
    if key.len() < 24 {
        return Err("must hold a key of at least 24 bytes".into());
    }
    Ok(key)
}

/// The `webhook-signature` value for a message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Exponential backoff after `attempts` failures.
pub fn backoff(w: &Webhook, attempts: i32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.clamp(1, 20) as u32 - 1);
    w.retry_base.saturating_mul(factor).min(w.retry_max)
}

/// Runs until `stop`.
pub async fn run(pool: PgPool, w: Webhook, stop: CancellationToken) {
    loop {
        let more = match deliver_due(&pool, &w).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "claims delivery round failed");
                false
            }
        };
        if !more {
            tokio::select! {
                _ = tokio::time::sleep(w.poll) => {}
                _ = stop.cancelled() => return,
            }
        } else if stop.is_cancelled() {
            return;
        }
    }
}

type Due = (CustomerId, i64, String, Json<serde_json::Value>, i32);

/// One round: delivers the newest due version of each customer. Returns how many were
/// delivered.
pub async fn deliver_due(pool: &PgPool, w: &Webhook) -> Result<usize, ApiError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(DELIVERY_LOCK_KEY)
        .fetch_one(&mut *tx)
        .await?;
    if !leader {
        return Ok(0);
    }
    let due: Vec<Due> = sqlx::query_as(
        "SELECT customer_id, version, webhook_id, document, attempts FROM (
             SELECT DISTINCT ON (customer_id) customer_id, version, webhook_id, document,
                    attempts, next_attempt_at
               FROM claims_deliveries
              WHERE delivered_at IS NULL AND NOT superseded
              ORDER BY customer_id, version DESC) newest
          WHERE next_attempt_at <= now()
          ORDER BY next_attempt_at LIMIT 50",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut delivered = 0;
    for (customer, version, webhook_id, document, attempts) in due {
        let body = serde_json::to_vec(&document.0).map_err(ApiError::internal)?;
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let result = w
            .client
            .post(&w.url)
            .header("content-type", "application/json")
            .header("webhook-id", &webhook_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sign(&w.key, &webhook_id, ts, &body))
            .body(body)
            .send()
            .await;
        let failure = match result {
            Ok(res) if res.status().is_success() => None,
            Ok(res) => Some(format!("HTTP {}", res.status())),
            Err(e) => Some(format!("{e}")),
        };
        match failure {
            None => {
                sqlx::query(
                    "UPDATE claims_deliveries SET delivered_at = now(), attempts = attempts + 1,
                         last_error = NULL
                      WHERE customer_id = $1 AND version = $2",
                )
                .bind(customer)
                .bind(version)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE claims_deliveries SET superseded = true
                      WHERE customer_id = $1 AND version < $2 AND delivered_at IS NULL",
                )
                .bind(customer)
                .bind(version)
                .execute(&mut *tx)
                .await?;
                tracing::info!(customer_id = %customer, version, "claims delivered");
                delivered += 1;
            }
            Some(error) => {
                let wait = backoff(w, attempts + 1);
                sqlx::query(
                    "UPDATE claims_deliveries SET attempts = attempts + 1, last_error = $3,
                         next_attempt_at = now() + $4 * interval '1 millisecond'
                      WHERE customer_id = $1 AND version = $2",
                )
                .bind(customer)
                .bind(version)
                .bind(&error)
                .bind(wait.as_millis() as f64)
                .execute(&mut *tx)
                .await?;
                tracing::warn!(customer_id = %customer, version, attempt = attempts + 1, %error, retry_in_ms = wait.as_millis() as u64, "claims delivery failed");
            }
        }
    }
    tx.commit().await?;
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(secret_key("whsec_!!").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let w = Webhook {
            url: String::new(),
            key: Vec::new(),
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_millis(1000),
            poll: Duration::from_millis(100),
            client: reqwest::Client::new(),
        };
        assert_eq!(backoff(&w, 1), Duration::from_millis(100));
        assert_eq!(backoff(&w, 2), Duration::from_millis(200));
        assert_eq!(backoff(&w, 3), Duration::from_millis(400));
        assert_eq!(backoff(&w, 9), Duration::from_millis(1000));
    }
}
