//! Layered configuration: compiled-in defaults → optional TOML file → environment.
//!
//! Environment variables are `<SERVICE>__<SECTION>__<KEY>`, e.g. `CUSTOMER_API__DATABASE__URL`.
//! Invalid configuration fails at start with a message naming the key. Secrets are wrapped in
//! [`Secret`] and never printed. This module reads no global state other than the environment
//! it is asked to read, once, at start.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A value that must never be logged.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(v: T) -> Self {
        Self(v)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// Settings every service shares (the kit's part of a service's configuration).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitConfig {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub amqp: AmqpConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub outbox: OutboxConfig,
    /// Answering snapshot requests (`crate::snapshot`).
    pub snapshot: SnapshotConfig,
    /// The service's own settings (`[service]` in TOML, `<SERVICE>__SERVICE__<KEY>` in the
    /// environment), read by the service with [`KitConfig::service_settings`].
    #[serde(default)]
    pub service: serde_json::Value,
}

impl KitConfig {
    /// The `[service]` section as the service's settings type; absent keys take the type's
    /// serde defaults, unknown or ill-typed keys fail with the key named.
    pub fn service_settings<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        let v = match &self.service {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            v => v.clone(),
        };
        serde_path_to_error::deserialize(v).map_err(|e| {
            anyhow::anyhow!("invalid configuration: service.{}: {}", e.path(), e.inner())
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub bind: String,
    pub request_timeout_ms: u64,
    pub body_limit_bytes: usize,
    pub shutdown_grace_ms: u64,
    /// How long a client may take to send a request head (slow clients are disconnected).
    pub header_read_timeout_ms: u64,
    /// How long a request body may take to arrive before the request is 408.
    pub body_read_timeout_ms: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Runtime connection: a role that is neither superuser nor BYPASSRLS.
    pub url: Secret<String>,
    /// Connection for `migrate` (the schema owner); defaults to `url`.
    #[serde(default)]
    pub migrate_url: Option<Secret<String>>,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    pub url: Secret<String>,
    pub exchange: String,
    pub dead_letter_exchange: String,
    /// Prefix of this service's queue names (tests isolate themselves with it).
    pub queue_prefix: String,
    pub prefetch: u16,
    /// Deliveries of one queue applied side by side, each in its own transaction; the events
    /// of one customer stay in order, in one lane.
    pub consumer_lanes: u16,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub issuer: String,
    pub audience: String,
    #[serde(default)]
    pub hs256_secret: Option<Secret<String>>,
    #[serde(default)]
    pub jwks_url: Option<String>,
    pub leeway_seconds: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `json` (production) or `pretty` (local).
    pub format: String,
    /// An `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    pub enabled: bool,
    pub batch_size: i64,
    pub poll_interval_ms: u64,
    /// Rows the relay may have published and not yet had confirmed by the broker.
    pub max_unconfirmed: usize,
}

/// How a service answers snapshot requests (`crate::snapshot`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Entities sent per second at most, over all the answers in progress.
    pub rows_per_second: u32,
    /// Entities per `snapshot.page` event.
    pub page_size: u32,
    /// How often an idle answering job looks for a request.
    pub poll_interval_ms: u64,
}

/// Defaults of the kit's sections; a service adds its own (port, database, queue prefix).
pub const KIT_DEFAULTS: &str = r#"
[http]
request_timeout_ms = 15000
body_limit_bytes = 1048576
shutdown_grace_ms = 20000
header_read_timeout_ms = 5000
body_read_timeout_ms = 10000
max_connections = 4096

[database]
max_connections = 16
min_connections = 1
acquire_timeout_ms = 3000

[amqp]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
exchange = "platform.events"
dead_letter_exchange = "platform.dlx"
prefetch = 32
consumer_lanes = 4

[auth]
issuer = "https://auth.customer-platform.local"
audience = "customer-platform"
leeway_seconds = 30

[log]
format = "json"
level = "info"

[outbox]
enabled = true
batch_size = 500
poll_interval_ms = 100
max_unconfirmed = 10000

[snapshot]
rows_per_second = 2000
page_size = 200
poll_interval_ms = 500
"#;

/// Something that can check itself after loading.
pub trait Validate {
    fn validate(&self) -> Result<(), String>;
}

impl Validate for KitConfig {
    fn validate(&self) -> Result<(), String> {
        self.http
            .bind
            .parse::<SocketAddr>()
            .map_err(|_| format!("http.bind: {:?} is not a socket address", self.http.bind))?;
        let http = &self.http;
        if http.header_read_timeout_ms == 0 || http.body_read_timeout_ms == 0 {
            return Err(
                "http.header_read_timeout_ms, http.body_read_timeout_ms: must be > 0".into(),
            );
        }
        if http.body_read_timeout_ms >= http.request_timeout_ms {
            return Err("http.body_read_timeout_ms: must be less than request_timeout_ms".into());
        }
        if http.max_connections == 0 {
            return Err("http.max_connections: must be > 0".into());
        }
        let db = self.database.url.expose();
        if !(db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return Err("database.url: must be a postgres:// URL".into());
        }
        if self.database.max_connections == 0
            || self.database.min_connections > self.database.max_connections
        {
            return Err("database.max_connections: must be > 0 and >= min_connections".into());
        }
        let amqp = self.amqp.url.expose();
        if !(amqp.starts_with("amqp://") || amqp.starts_with("amqps://")) {
            return Err("amqp.url: must be an amqp:// or amqps:// URL".into());
        }
        if self.amqp.prefetch == 0 {
            return Err("amqp.prefetch: must be > 0".into());
        }
        if self.amqp.consumer_lanes == 0 || self.amqp.consumer_lanes > self.amqp.prefetch {
            return Err("amqp.consumer_lanes: must be between 1 and amqp.prefetch".into());
        }
        match (&self.auth.hs256_secret, &self.auth.jwks_url) {
            (Some(s), None) if s.expose().len() < 32 => {
                return Err("auth.hs256_secret: must be at least 32 characters".into());
            }
            (Some(_), None) => {}
            (None, Some(u)) if u.starts_with("https://") || u.starts_with("http://") => {}
            (None, Some(_)) => return Err("auth.jwks_url: must be an http(s) URL".into()),
            _ => {
                return Err(
                    "auth: set exactly one of auth.hs256_secret (local/dev) and auth.jwks_url"
                        .into(),
                );
            }
        }
        if self.auth.leeway_seconds > 60 {
            return Err("auth.leeway_seconds: must be at most 60".into());
        }
        if !matches!(self.log.format.as_str(), "json" | "pretty") {
            return Err("log.format: must be 'json' or 'pretty'".into());
        }
        if !(1..=100_000).contains(&self.snapshot.rows_per_second) {
            return Err("snapshot.rows_per_second: must be 1 to 100000".into());
        }
        if !(1..=1_000).contains(&self.snapshot.page_size) {
            return Err("snapshot.page_size: must be 1 to 1000".into());
        }
        if self.snapshot.poll_interval_ms == 0 {
            return Err("snapshot.poll_interval_ms: must be > 0".into());
        }
        if !(1..=10_000).contains(&self.outbox.batch_size) {
            return Err("outbox.batch_size: must be 1 to 10000".into());
        }
        if !(1..=1_000_000).contains(&self.outbox.max_unconfirmed) {
            return Err("outbox.max_unconfirmed: must be 1 to 1000000".into());
        }
        Ok(())
    }
}

/// Loads `T` from the kit defaults, the service's defaults, an optional file and the
/// environment variables under `env_prefix` (e.g. `CUSTOMER_API`).
pub fn load<T: DeserializeOwned + Validate>(
    env_prefix: &str,
    service_defaults: &str,
    file: Option<&Path>,
) -> anyhow::Result<T> {
    load_from(env_prefix, service_defaults, file, None)
}

/// As [`load`], reading environment variables from `env` instead of the process (tests).
pub fn load_from<T: DeserializeOwned + Validate>(
    env_prefix: &str,
    service_defaults: &str,
    file: Option<&Path>,
    env: Option<std::collections::HashMap<String, String>>,
) -> anyhow::Result<T> {
    use config::{Config, Environment, File, FileFormat};
    let mut b = Config::builder()
        .add_source(File::from_str(KIT_DEFAULTS, FileFormat::Toml))
        .add_source(File::from_str(service_defaults, FileFormat::Toml));
    if let Some(path) = file {
        if !path.exists() {
            anyhow::bail!("config file {} does not exist", path.display());
        }
        b = b.add_source(File::from(path));
    }
    let env_source = Environment::with_prefix(env_prefix)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(env);
    let cfg = b
        .add_source(env_source)
        .build()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let value: T = cfg
        .try_deserialize()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    value
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVC: &str = r#"
[http]
bind = "127.0.0.1:8081"
[database]
url = "postgres://app@127.0.0.1/db"
[amqp]
queue_prefix = "svc"
"#;

    fn env(pairs: &[(&str, &str)]) -> Option<std::collections::HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn env_overrides_defaults_and_secrets_are_redacted() {
        let cfg: KitConfig = load_from(
            "SVC",
            SVC,
            None,
            env(&[
                (
                    "SVC__AUTH__HS256_SECRET",
                    "0123456789abcdef0123456789abcdef",
                ),
                ("SVC__DATABASE__MAX_CONNECTIONS", "4"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.database.max_connections, 4);
        assert_eq!(cfg.http.bind, "127.0.0.1:8081");
        let printed = format!("{cfg:?}");
        assert!(!printed.contains("0123456789abcdef"));
        assert!(!printed.contains("postgres://app"));
    }

    #[test]
    fn invalid_config_fails_with_the_key() {
        let e = load_from::<KitConfig>("SVC", SVC, None, env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth"), "{e}");
        let e = load_from::<KitConfig>(
            "SVC",
            SVC,
            None,
            env(&[
                ("SVC__AUTH__HS256_SECRET", "short"),
                ("SVC__HTTP__BIND", "x"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("http.bind"), "{e}");
    }
}
