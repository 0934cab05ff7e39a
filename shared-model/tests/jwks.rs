//! RS256/ES256 verification against a JWKS endpoint: caching, one refetch on an unknown key id,
//! pinned algorithms.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use shared_model::auth::{Verifier, claims_for};
use shared_model::config::AuthConfig;
use tokio::sync::Mutex;

const RSA_KEY: &str = include_str!("fixtures/rsa-test-key.pem");
const EC_KEY: &str = include_str!("fixtures/ec-test-key.pem");
const JWKS: &str = include_str!("fixtures/test-jwks.json");

struct Server {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks_server(initial: Vec<Value>) -> Server {
    let keys = Arc::new(Mutex::new(initial));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (k, f) = (keys.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let (k, f) = (k.clone(), f.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                Json(json!({"keys": *k.lock().await}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        url: format!("http://{addr}/.well-known/jwks.json"),
        keys,
        fetches,
    }
}

fn cfg(url: &str) -> AuthConfig {
    AuthConfig {
        issuer: "https://auth.test".into(),
        audience: "customer-platform".into(),
        hs256_secret: None,
        jwks_url: Some(url.into()),
        leeway_seconds: 5,
    }
}

fn sign(cfg: &AuthConfig, alg: Algorithm, kid: &str, key: &EncodingKey, ttl_offset: i64) -> String {
    let mut claims = claims_for(cfg, "user-1", None, &[], Duration::from_secs(300));
    claims.exp = (claims.exp as i64 + ttl_offset) as u64;
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

#[tokio::test]
async fn verifies_rs256_and_es256_from_jwks_with_caching_and_one_refetch_on_unknown_kid() {
    let fixtures: Value = serde_json::from_str(JWKS).unwrap();
    let server = jwks_server(vec![fixtures["rsa"].clone()]).await;
    let cfg = cfg(&server.url);
    let v = Verifier::with_min_refetch(&cfg, Duration::from_millis(300)).unwrap();
    let rsa = EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).unwrap();
    let ec = EncodingKey::from_ec_pem(EC_KEY.as_bytes()).unwrap();

    let token = sign(&cfg, Algorithm::RS256, "rsa-1", &rsa, 0);
    assert_eq!(v.verify(&token).await.unwrap().sub, "user-1");
    assert_eq!(v.verify(&token).await.unwrap().sub, "user-1");
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        1,
        "the key set is cached"
    );

    // A new key is published (rotation): its unknown kid causes one refetch.
    server.keys.lock().await.push(fixtures["ec"].clone());
    tokio::time::sleep(Duration::from_millis(350)).await;
    let es = sign(&cfg, Algorithm::ES256, "ec-1", &ec, 0);
    assert_eq!(v.verify(&es).await.unwrap().sub, "user-1");
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);

    // Unknown kids are refused; refetches are rate-limited, not one per request.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let unknown = sign(&cfg, Algorithm::RS256, "nope", &rsa, 0);
    for _ in 0..5 {
        let e = v.verify(&unknown).await.unwrap_err();
        assert_eq!(e.code, "NOT_AUTHORIZED");
    }
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        3,
        "one refetch for the unknown kid"
    );

    // Expired, wrong algorithm for the key, and HS256 (algorithm confusion) are refused.
    let expired = sign(&cfg, Algorithm::RS256, "rsa-1", &rsa, -3600);
    assert_eq!(
        v.verify(&expired).await.unwrap_err().detail.as_deref(),
        Some("the token has expired")
    );
    let wrong_alg = sign(&cfg, Algorithm::RS256, "ec-1", &rsa, 0);
    assert!(v.verify(&wrong_alg).await.is_err());
    let n = fixtures["rsa"]["n"].as_str().unwrap();
    let confused = sign(
        &cfg,
        Algorithm::HS256,
        "rsa-1",
        &EncodingKey::from_secret(n.as_bytes()),
        0,
    );
    assert_eq!(
        v.verify(&confused).await.unwrap_err().detail.as_deref(),
        Some("the token's algorithm is not accepted")
    );
}

#[tokio::test]
async fn an_unreachable_jwks_is_unavailable_not_unauthorized() {
    let cfg = cfg("http://127.0.0.1:9/jwks.json");
    let v = Verifier::from_config(&cfg).unwrap();
    let rsa = EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).unwrap();
    let e = v
        .verify(&sign(&cfg, Algorithm::RS256, "rsa-1", &rsa, 0))
        .await
        .unwrap_err();
    assert_eq!(e.code, "UNAVAILABLE");
}
