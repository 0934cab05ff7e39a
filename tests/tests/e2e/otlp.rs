//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, a service exports its spans over OTLP/HTTP, in the
//! caller's trace.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use shared_model::auth::Permission;
use shared_model::testkit::{self, TestDb};
use tests::{ServiceProcess, free_port, service_env};
use tokio::sync::Mutex;

#[tokio::test]
async fn spans_are_exported_over_otlp_in_the_callers_trace() {
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let sink = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().await.push(body);
                ([("content-type", "application/x-protobuf")], Bytes::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await.unwrap() });

    let db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
    let amqp = testkit::amqp_config("otlp");
    let port = free_port();
    let mut env = service_env(&db, &amqp, "CUSTOMER_API", port, "info");
    env.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        format!("http://{collector_addr}"),
    ));
    env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()));
    let svc = ServiceProcess::start("customer-api", port, &env)
        .await
        .unwrap();

    let trace_id = "5b8efff798038103d269b633813fc60c";
    let token = testkit::token("otlp", None, &[Permission::PlatformAdminViewAllCustomers]);
    let res = reqwest::Client::new()
        .get(format!("{}/v1/customers", svc.base))
        .bearer_auth(token)
        .header("traceparent", format!("00-{trace_id}-eee19b7ec3c1b174-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let want: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    let mut found = false;
    for _ in 0..100 {
        if received
            .lock()
            .await
            .iter()
            .any(|b| b.windows(16).any(|w| w == want.as_slice()))
        {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "no exported span carries the caller's trace id");
    assert!(svc.terminate().await.unwrap().success());
    tests::delete_services_broker_names(&["customer-api"], &db, &amqp, &[]).await;
}
