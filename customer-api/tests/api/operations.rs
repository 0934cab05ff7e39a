//! Health, readiness, metrics and the API documents.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::Ctx;

#[tokio::test]
async fn health_metrics_openapi_and_docs() {
    let ctx = Ctx::new().await;
    let res = ctx
        .req(Method::GET, "/health/live", None)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Readiness waits for the broker connection.
    let mut ready = false;
    for _ in 0..50 {
        let res = ctx
            .req(Method::GET, "/health/ready", None)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::OK {
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["database"], "up");
            assert_eq!(body["broker"], "up");
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "never ready");

    ctx.req(Method::GET, "/v1/customers", Some(&ctx.admin()))
        .send()
        .await
        .unwrap();
    let missing = format!("/v1/customers/{}", uuid::Uuid::now_v7());
    let res = ctx
        .req(Method::GET, &missing, Some(&ctx.admin()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let metrics = ctx
        .req(Method::GET, "/metrics", None)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("outbox_pending_events"), "{metrics}");

    let doc: Value = ctx
        .req(Method::GET, "/openapi.json", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/customers",
        "/v1/customers/{customerId}",
        "/health/ready",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    for op in [
        ("/v1/customers", "post"),
        ("/v1/customers", "get"),
        ("/v1/customers/{customerId}", "patch"),
        ("/v1/customers/{customerId}", "delete"),
    ] {
        assert!(doc["paths"][op.0][op.1].is_object(), "{op:?}");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let docs = ctx.req(Method::GET, "/docs/", None).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(
        html.contains("swagger"),
        "the docs page is served from the binary"
    );
    assert!(!html.contains("cdn"), "no assets from a CDN");
    // The page finds the document relative to itself (behind a path prefix too).
    let init = ctx
        .req(Method::GET, "/docs/swagger-initializer.js", None)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("\"../openapi.json\""), "{init}");
    assert!(!init.contains("\"/openapi.json\""), "{init}");
    let res = ctx
        .req(Method::GET, "/no/such/route", None)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn dead_letter_endpoints_are_for_platform_admins_and_known_consumers() {
    let ctx = Ctx::new().await;
    let path = "/internal/v1/dead-letters?consumer=nope";
    let res = ctx.req(Method::GET, path, None).send().await.unwrap();
    crate::problem(res, StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED").await;
    let tenant = ctx.tenant(&uuid::Uuid::now_v7().to_string());
    let res = ctx
        .req(Method::GET, path, Some(&tenant))
        .send()
        .await
        .unwrap();
    crate::problem(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = ctx
        .req(Method::GET, path, Some(&ctx.admin()))
        .send()
        .await
        .unwrap();
    crate::problem(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let res = ctx
        .req(
            Method::POST,
            "/internal/v1/dead-letters/replay",
            Some(&ctx.admin()),
        )
        .json(&serde_json::json!({"consumer": "nope", "limit": 5}))
        .send()
        .await
        .unwrap();
    crate::problem(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let res = ctx
        .req(Method::GET, "/internal/v1/dead-letters", Some(&ctx.admin()))
        .send()
        .await
        .unwrap();
    crate::invalid(res, "consumer").await;
}

/// The kit's middleware stack (request id, trace context, metrics, body limit, compression,
/// problem documents for errors made outside handlers) answers API and operations routes alike.
#[tokio::test]
async fn the_shared_middleware_stack_serves_every_route() {
    let ctx = Ctx::with(|cfg| cfg.http.body_limit_bytes = 2_048).await;
    let admin = ctx.admin();

    let res = ctx
        .req(Method::GET, "/health/live", None)
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "req-123", "echoed");
    assert!(res.headers().contains_key("traceparent"));
    let res = ctx
        .req(Method::GET, "/v1/customers", Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    // A body over the limit: 413 with a problem document, before any handler runs.
    let big = serde_json::json!({"name": "x".repeat(4_096), "type": "consumer"});
    let res = ctx
        .req(Method::POST, "/v1/customers", Some(&admin))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], 413);
    let list = ctx.get_json("/v1/customers", &admin).await;
    assert_eq!(list["items"], serde_json::json!([]), "nothing written");

    // A method the route does not have: 405 with a problem document.
    let res = ctx
        .req(Method::PUT, "/health/live", None)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    // Compressed when asked for.
    for i in 0..5 {
        ctx.create(crate::consumer(
            &format!("gz{i}"),
            &format!("Compressible {i}"),
        ))
        .await;
    }
    let res = ctx
        .req(Method::GET, "/v1/customers", Some(&admin))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-encoding"], "gzip");
    assert_eq!(res.headers()["vary"], "accept-encoding");
    // Not compressed when not asked for, but still said to vary by what was accepted.
    let res = ctx
        .req(Method::GET, "/v1/customers", Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key("content-encoding"));
    assert_eq!(res.headers()["vary"], "accept-encoding");
    let list: Value = res.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 5);

    // A body of undeclared length (chunked) is refused once reading it passes the limit.
    let body = serde_json::json!({"name": "y".repeat(4_096), "type": "consumer"}).to_string();
    let raw = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let mut conn = tokio::net::TcpStream::connect(ctx.app.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut conn, raw.as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut conn, &mut answer)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    let list = ctx.get_json("/v1/customers", &admin).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        5,
        "nothing written"
    );

    // A method of the client's own choosing does not become a series of its own.
    let res = ctx
        .req(Method::from_bytes(b"PURGE").unwrap(), "/health/live", None)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Requests are counted by route template and status.
    let metrics = ctx
        .req(Method::GET, "/metrics", None)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"http_requests_total{method="GET",route="/health/live",status="200"}"#,
        r#"http_requests_total{method="POST",route="/v1/customers",status="413"}"#,
        r#"http_requests_total{method="PUT",route="/health/live",status="405"}"#,
        r#"http_requests_total{method="OTHER",route="/health/live",status="405"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    assert!(!metrics.contains("PURGE"), "{metrics}");
}
