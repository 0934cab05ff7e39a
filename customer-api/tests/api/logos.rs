use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use shared_model::auth::Permission;
use shared_model::testkit;

use crate::fixtures::{acme_client, send, tenant_setup};
use crate::ok;
use crate::{Ctx, invalid, problem};

/// A valid 1x1 PNG.
fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
        .unwrap()
}

fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    v.extend(w.to_be_bytes());
    v.extend(h.to_be_bytes());
    v.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    v
}

async fn upload(
    ctx: &Ctx,
    path: &str,
    token: &str,
    body: Vec<u8>,
    declared: &str,
) -> reqwest::Response {
    ctx.req(Method::PUT, path, Some(token))
        .header("content-type", declared)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn logos_are_checked_by_content_stored_once_and_served_immutable() {
    let ctx = Ctx::new().await;
    let (cid, t, clients) = tenant_setup(&ctx, "logo").await;
    let logo_path = format!("/v1/customers/{cid}/logo");

    // The declared type is ignored: the content decides.
    let c = ok(
        upload(&ctx, &logo_path, &t, png(), "image/gif").await,
        StatusCode::OK,
    )
    .await;
    let receipt = &c["logo"];
    assert_eq!(receipt["contentType"], "image/png");
    assert_eq!(receipt["size"], png().len());
    assert_eq!(
        (receipt["width"].as_u64(), receipt["height"].as_u64()),
        (Some(1), Some(1))
    );
    let sha = receipt["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha.len(), 64);
    assert_eq!(receipt["url"], format!("/v1/logos/{sha}"));
    assert_eq!(c["version"], 2);

    // Served publicly, immutable, with a strong ETag.
    let res = ctx
        .req(Method::GET, &format!("/v1/logos/{sha}"), None)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["etag"], format!("\"{sha}\""));
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(res.bytes().await.unwrap().to_vec(), png());
    let res = ctx
        .req(Method::GET, &format!("/v1/logos/{sha}"), None)
        .header("if-none-match", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    problem(
        ctx.req(Method::GET, &format!("/v1/logos/{}", "0".repeat(64)), None)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    invalid(
        ctx.req(Method::GET, "/v1/logos/not-a-hash", None)
            .send()
            .await
            .unwrap(),
        "sha256",
    )
    .await;

    // Refusals.
    invalid(
        upload(
            &ctx,
            &logo_path,
            &t,
            b"GIF89a\x01\x00\x01\x00".to_vec(),
            "image/png",
        )
        .await,
        "body",
    )
    .await;
    invalid(
        upload(&ctx, &logo_path, &t, b"hello".to_vec(), "image/png").await,
        "body",
    )
    .await;
    invalid(
        upload(&ctx, &logo_path, &t, Vec::new(), "image/png").await,
        "body",
    )
    .await;
    let big = invalid(
        upload(&ctx, &logo_path, &t, png_header(5000, 10), "image/png").await,
        "body",
    )
    .await;
    assert!(big["errors"][0]["rule"].as_str().unwrap().contains("4096"));
    let mut huge = png_header(100, 100);
    huge.resize((1 << 20) + 1, 0);
    let res = upload(&ctx, &logo_path, &t, huge, "image/png").await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    // The same image on a client is stored once.
    let client = ok(
        send(&ctx, Method::POST, &clients, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let client_logo = format!("{clients}/{}/logo", client["id"].as_str().unwrap());
    let cl = ok(
        upload(&ctx, &client_logo, &t, png(), "image/png").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cl["logo"]["sha256"], sha);
    let mut su = ctx.db.superuser().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM logos")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(stored, 1);

    // Deleting the customer's logo keeps the image the client still uses; deleting that too
    // removes it.
    let c = ok(
        send(&ctx, Method::DELETE, &logo_path, &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(c["logo"], Value::Null);
    assert_eq!(
        ctx.req(Method::GET, &format!("/v1/logos/{sha}"), None)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    ok(
        send(&ctx, Method::DELETE, &client_logo, &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        ctx.req(Method::GET, &format!("/v1/logos/{sha}"), None)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // Events carry the receipt.
    let events = ctx.events().await;
    let updates: Vec<&Value> = events
        .iter()
        .filter(|(k, _)| k == "customer.updated")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(updates.len(), 2);
    assert_eq!(
        updates[0]["data"]["changedFields"],
        serde_json::json!(["logo"])
    );
    assert_eq!(updates[0]["data"]["logo"]["sha256"], sha);

    // Authorization.
    problem(
        ctx.req(Method::PUT, &logo_path, None)
            .body(png())
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
    let viewer = testkit::token(
        "v",
        Some(cid.parse().unwrap()),
        &[Permission::ViewCustomer, Permission::ViewClient],
    );
    problem(
        upload(&ctx, &logo_path, &viewer, png(), "image/png").await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        upload(&ctx, &client_logo, &viewer, png(), "image/png").await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let (_, other, _) = tenant_setup(&ctx, "logo-2").await;
    problem(
        upload(&ctx, &logo_path, &other, png(), "image/png").await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    problem(
        upload(&ctx, &client_logo, &other, png(), "image/png").await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
}
