//! customer-api and partition-keys as real processes over RabbitMQ: a customer's lifecycle
//! reaches its API keys, and no key secret is ever written to the logs.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit::{self, TestDb};
use tests::{ServiceProcess, free_port, service_env};

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let r = http.request(method, url).bearer_auth(token);
    let res = match body {
        Some(b) => r.json(&b),
        None => r,
    }
    .send()
    .await
    .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn customer_lifecycle_reaches_keys_across_services_and_secrets_stay_out_of_logs() {
    let amqp = testkit::amqp_config("e2e-keys");
    let customers_db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
    let keys_db = TestDb::new(&(partition_keys::SERVICE.migrations)()).await;
    let dir = std::env::temp_dir().join(format!("cp-e2e-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys_log = dir.join("partition-keys.log");

    let cport = free_port();
    let customers = ServiceProcess::start(
        "customer-api",
        cport,
        &service_env(&customers_db, &amqp, "CUSTOMER_API", cport, "warn"),
    )
    .await
    .unwrap();
    let kport = free_port();
    let keys = ServiceProcess::start_logged(
        "partition-keys",
        kport,
        &service_env(&keys_db, &amqp, "PARTITION_KEYS", kport, "debug"),
        Some(&keys_log),
    )
    .await
    .unwrap();

    let http = reqwest::Client::new();
    let admin = testkit::token("admin", None, &[Permission::PlatformAdminEditAllCustomers]);
    let (status, c) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/v1/customers", customers.base),
        &admin,
        Some(json!({"name": "Keyholder", "type": "business", "bootstrapTenantKey": "keyholder"})),
    )
    .await;
    assert_eq!(status, 201);
    let id = c["id"].as_str().unwrap().to_string();
    let tenant = testkit::token(
        "owner",
        Some(id.parse().unwrap()),
        &[Permission::ManagePartitions, Permission::EditCustomer],
    );
    let gateway = testkit::token("gateway", None, &[Permission::VerifyApiKeys]);

    // partition-keys learns about the customer from customer.created.
    let partitions = format!("{}/v1/customers/{id}/partitions", keys.base);
    let deadline = Instant::now() + Duration::from_secs(10);
    let partition = loop {
        let (s, p) = call(
            &http,
            reqwest::Method::POST,
            partitions.clone(),
            &tenant,
            Some(json!({"name": "Live", "environment": "prod"})),
        )
        .await;
        if s == 201 {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "partition-keys never learnt the customer: {s} {p}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let keys_url = format!("{partitions}/{}/keys", partition["id"].as_str().unwrap());
    let keys_path = keys_url.trim_start_matches(&keys.base).to_string();
    let mut secrets = Vec::new();
    for name in ["a", "b"] {
        let (s, k) = call(
            &http,
            reqwest::Method::POST,
            keys_url.clone(),
            &tenant,
            Some(json!({"name": name, "kind": "admin"})),
        )
        .await;
        assert_eq!(s, 201);
        secrets.push(k["secret"].as_str().unwrap().to_string());
    }
    let verify = |key: String| {
        let http = http.clone();
        let url = format!("{}/v1/keys/verify", keys.base);
        let gateway = gateway.clone();
        async move {
            call(
                &http,
                reqwest::Method::POST,
                url,
                &gateway,
                Some(json!({"key": key})),
            )
            .await
            .1["valid"]
                == true
        }
    };
    for s in &secrets {
        assert!(verify(s.clone()).await);
    }
    // One call continuing a caller's trace, to find in the log below.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traced = http
        .post(format!("{}/v1/keys/verify", keys.base))
        .bearer_auth(&gateway)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .header("x-request-id", "traced-verify")
        .json(&json!({"key": secrets[0]}))
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), 200);

    // Deactivating the customer makes every key fail within a second.
    let window = (time::OffsetDateTime::now_utc() + time::Duration::days(7))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/v1/customers/{id}/deactivate", customers.base),
        &tenant,
        Some(json!({"windowEndsAt": window, "feedback": {"reasonCode": "other"}})),
    )
    .await;
    assert_eq!(s, 200);
    let t0 = Instant::now();
    for secret in &secrets {
        while verify(secret.clone()).await {
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "a key still verifies after {:?}",
                t0.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    println!(
        "all keys refused {:?} after the deactivation answered",
        t0.elapsed()
    );

    // Deleting the customer removes its partitions; their keys stay expired.
    let (s, _) = call(
        &http,
        reqwest::Method::DELETE,
        format!("{}/v1/customers/{id}", customers.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let mut su = keys_db.superuser().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM partitions")
            .fetch_one(&mut su)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "partitions not removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(live, 0);
    for s in &secrets {
        assert!(!verify(s.clone()).await);
    }

    assert!(customers.terminate().await.unwrap().success());
    assert!(keys.terminate().await.unwrap().success());
    // The service logged at debug through all of this; no secret is in its log.
    let log = std::fs::read_to_string(&keys_log).unwrap();
    assert!(log.contains("API key created"), "the log is empty?");
    for s in &secrets {
        assert!(!log.contains(&s[9..]), "a key secret is in the log");
    }
    // Every line is one JSON document; a request's lines name the request they were written in.
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let finished = lines
        .iter()
        .find(|l| l["message"] == "request finished" && l["span"]["trace_id"] == trace_id)
        .expect("the traced call's request line");
    assert_eq!(finished["level"], "INFO");
    assert_eq!(finished["status"], 200);
    assert!(finished["ms"].as_f64().unwrap() > 0.0);
    assert_eq!(finished["span"]["name"], "request");
    assert_eq!(finished["span"]["method"], "POST");
    assert_eq!(finished["span"]["path"], "/v1/keys/verify");
    assert_eq!(finished["span"]["request_id"], "traced-verify");
    let created = lines
        .iter()
        .find(|l| l["message"] == "API key created")
        .unwrap();
    assert_eq!(created["span"]["name"], "request");
    assert_eq!(created["span"]["method"], "POST");
    assert_eq!(created["span"]["path"], keys_path);
    assert_eq!(created["span"]["trace_id"].as_str().unwrap().len(), 32);
    let consumed = lines
        .iter()
        .find(|l| l["span"]["name"] == "consume")
        .expect("a line written while consuming an event");
    assert!(consumed["span"].get("path").is_none());
    std::fs::remove_dir_all(&dir).ok();
    tests::delete_services_broker_names(&["customer-api"], &customers_db, &amqp, &[]).await;
    tests::delete_services_broker_names(&["partition-keys"], &keys_db, &amqp, &[]).await;
}
