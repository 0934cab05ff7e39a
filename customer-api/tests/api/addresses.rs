use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::fixtures::{acme_client, send, tenant_setup};
use crate::ok;
use crate::{Ctx, invalid, problem};

#[tokio::test]
async fn address_book_keeps_one_default_of_each_kind() {
    let ctx = Ctx::new().await;
    let (_, t, clients) = tenant_setup(&ctx, "addr").await;
    let c = ok(
        send(&ctx, Method::POST, &clients, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let book = format!("{clients}/{}/addresses", c["id"].as_str().unwrap());
    let a = ok(send(&ctx, Method::POST, &book, &t, Some(json!({"label": "HQ", "lines": ["1 Main St"], "city": "Springfield", "country": "us", "defaultShipping": true, "defaultBilling": true}))).await, StatusCode::CREATED).await;
    assert_eq!(a["country"], "US");
    let b = ok(
        send(
            &ctx,
            Method::POST,
            &book,
            &t,
            Some(json!({"lines": ["9 Dock Rd"], "defaultShipping": true})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let list = ok(
        send(&ctx, Method::GET, &book, &t, None).await,
        StatusCode::OK,
    )
    .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["defaultShipping"], false);
    assert_eq!(items[0]["defaultBilling"], true);
    assert_eq!(items[0]["version"], 2);
    assert_eq!(items[1]["defaultShipping"], true);

    for (body, field) in [
        (json!({"lines": []}), "lines"),
        (json!({"lines": ["x"], "country": "XX"}), "country"),
        (
            json!({"lines": ["x"], "postalCode": "123456789012345678901"}),
            "postalCode",
        ),
        (json!({"lines": ["x"], "label": ""}), "label"),
    ] {
        invalid(send(&ctx, Method::POST, &book, &t, Some(body)).await, field).await;
    }

    let bloc = format!("{book}/{}", b["id"].as_str().unwrap());
    let p = ok(
        send(
            &ctx,
            Method::PATCH,
            &bloc,
            &t,
            Some(json!({"defaultBilling": true, "city": "Portsmouth"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(p["defaultBilling"], true);
    let a_now = ok(
        send(
            &ctx,
            Method::GET,
            &format!("{book}/{}", a["id"].as_str().unwrap()),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(a_now["defaultBilling"], false);
    let stale = ctx
        .req(Method::PATCH, &bloc, Some(&t))
        .header("if-match", "\"1\"")
        .json(&json!({"city": "X"}))
        .send()
        .await
        .unwrap();
    problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    )
    .await;
    assert_eq!(
        send(&ctx, Method::DELETE, &bloc, &t, None).await.status(),
        StatusCode::NO_CONTENT
    );

    let (_, other, _) = tenant_setup(&ctx, "addr-2").await;
    problem(
        send(&ctx, Method::GET, &book, &other, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    let kinds: Vec<String> = ctx
        .events()
        .await
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("client_address."))
        .collect();
    assert_eq!(
        kinds,
        [
            "client_address.created",
            "client_address.updated",
            "client_address.created",
            "client_address.updated",
            "client_address.updated",
            "client_address.deleted"
        ]
    );
    ctx.assert_updates_name_their_changes().await;
}
