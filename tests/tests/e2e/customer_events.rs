//! The customer-api binary publishes `customer.created` to RabbitMQ with the request's trace.

use std::time::Duration;

use lapin::types::AMQPValue;
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit::{self, TestDb};
use tests::{ServiceProcess, free_port, service_env};

use crate::{listen, receive};

#[tokio::test]
async fn customer_created_reaches_rabbitmq_as_a_cloudevent_with_the_request_trace() {
    let db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
    let amqp = testkit::amqp_config("e2e");
    let queue = format!("{}.observer", amqp.queue_prefix);
    let (_conn, mut consumer) = listen(&amqp, &queue, &["customer.*"]).await;

    let port = free_port();
    let env = service_env(&db, &amqp, "CUSTOMER_API", port, "warn");
    let svc = ServiceProcess::start("customer-api", port, &env)
        .await
        .unwrap();

    let token = testkit::token(
        "e2e-admin",
        None,
        &[Permission::PlatformAdminEditAllCustomers],
    );
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let res = reqwest::Client::new()
        .post(format!("{}/v1/customers", svc.base))
        .bearer_auth(token)
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .json(&json!({"name": "Globex", "type": "business", "bootstrapTenantKey": "globex-e2e"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();

    let d = receive(&mut consumer, 1, Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(d.routing_key.as_str(), "customer.created");
    let props = &d.properties;
    assert_eq!(
        props.content_type().as_ref().unwrap().as_str(),
        "application/cloudevents+json"
    );
    assert_eq!(props.delivery_mode(), &Some(2), "persistent");
    let headers = props.headers().as_ref().unwrap();
    let header_tp = match headers.inner().get("traceparent") {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        other => panic!("no traceparent header: {other:?}"),
    };
    assert!(header_tp.contains(trace_id));

    let e: Value = serde_json::from_slice(&d.data).unwrap();
    assert_eq!(e["specversion"], "1.0");
    assert_eq!(e["type"], "customer.created");
    assert_eq!(e["source"], "/customer-api");
    assert_eq!(e["subject"], created["id"]);
    assert_eq!(e["customerid"], created["id"]);
    assert_eq!(e["actor"], "e2e-admin");
    assert_eq!(e["datacontenttype"], "application/json");
    assert_eq!(
        props.message_id().as_ref().unwrap().as_str(),
        e["id"].as_str().unwrap()
    );
    let id = uuid::Uuid::parse_str(e["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    time::OffsetDateTime::parse(
        e["time"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let tp = e["traceparent"].as_str().unwrap();
    assert_eq!(
        tp.split('-').nth(1),
        Some(trace_id),
        "the event continues the request's trace"
    );
    assert_eq!(e["data"], created, "data is the full entity state");

    // SIGTERM drains and exits cleanly.
    let status = svc.terminate().await.unwrap();
    assert!(status.success(), "{status:?}");
    tests::delete_services_broker_names(&["customer-api"], &db, &amqp, &[queue]).await;
}
