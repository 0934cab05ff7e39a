//! Purchases, statistics, lead conversion, disable and enable of clients.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fixtures::{acme_client, person, send, tenant_setup};
use crate::{Ctx, invalid, ok, problem};

#[tokio::test]
async fn purchases_add_up_atomically_in_one_currency_and_feed_stats() {
    let ctx = Ctx::new().await;
    let (_, t, path) = tenant_setup(&ctx, "cl-rev").await;
    let c = ok(
        send(&ctx, Method::POST, &path, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let loc = format!("{path}/{}", c["id"].as_str().unwrap());
    let buy = format!("{loc}/purchases");

    // Concurrent purchases are all counted.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let req = ctx
            .req(Method::POST, &buy, Some(&t))
            .json(&json!({"amountMinor": 1000 + i, "currency": "eur", "purchasedAt": format!("2026-01-0{}T10:00:00Z", i + 1)}));
        tasks.push(tokio::spawn(
            async move { req.send().await.unwrap().status() },
        ));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let got = ok(
        send(&ctx, Method::GET, &loc, &t, None).await,
        StatusCode::OK,
    )
    .await;
    let r = &got["revenue"];
    assert_eq!(r["currency"], "EUR");
    assert_eq!(r["totalMinor"], 8 * 1000 + 28);
    assert_eq!(r["purchaseCount"], 8);
    assert_eq!(r["firstPurchaseAt"], "2026-01-01T10:00:00Z");
    assert_eq!(r["lastPurchaseAt"], "2026-01-08T10:00:00Z");
    assert_eq!(got["version"], 9);

    for (body, field) in [
        // The client's revenue currency is EUR now.
        (json!({"amountMinor": 5, "currency": "USD"}), "currency"),
        (json!({"amountMinor": 0, "currency": "EUR"}), "amountMinor"),
        (json!({"amountMinor": 5, "currency": "EURO"}), "currency"),
        (
            json!({"amountMinor": 5, "currency": "EUR", "purchasedAt": "2099-01-01T00:00:00Z"}),
            "purchasedAt",
        ),
    ] {
        invalid(send(&ctx, Method::POST, &buy, &t, Some(body)).await, field).await;
    }

    // A second client buying in USD, a lead that has bought nothing.
    let other = ok(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(json!({"type": "business", "name": "Initech", "source": "partner"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    ok(
        send(
            &ctx,
            Method::POST,
            &format!("{path}/{}/purchases", other["id"].as_str().unwrap()),
            &t,
            Some(json!({"amountMinor": 250, "currency": "USD"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    ok(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(person("Grace", "Hopper")),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    let stats = ok(
        send(&ctx, Method::GET, &format!("{path}/stats"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stats["total"], 3);
    assert_eq!(
        stats["byStatus"],
        json!({"active": 2, "lead": 1, "inactive": 0, "churned": 0})
    );
    assert_eq!(stats["bySource"]["referral"], 1);
    assert_eq!(stats["bySource"]["partner"], 1);
    assert_eq!(stats["bySource"]["direct"], 1);
    assert_eq!(stats["byType"], json!({"business": 2, "individual": 1}));
    assert_eq!(
        stats["revenue"],
        json!([
            {"currency": "EUR", "totalMinor": 8028, "clients": 1, "purchases": 8},
            {"currency": "USD", "totalMinor": 250, "clients": 1, "purchases": 1}
        ])
    );
}

#[tokio::test]
async fn convert_disable_enable() {
    let ctx = Ctx::new().await;
    let (_, t, path) = tenant_setup(&ctx, "cl-conv").await;
    let lead = ok(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(person("Ada", "Lovelace")),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let loc = format!("{path}/{}", lead["id"].as_str().unwrap());

    invalid(
        send(
            &ctx,
            Method::POST,
            &format!("{loc}/convert"),
            &t,
            Some(json!({"businessProfile": {}})),
        )
        .await,
        "name",
    )
    .await;
    let conv = ok(
        send(
            &ctx,
            Method::POST,
            &format!("{loc}/convert"),
            &t,
            Some(
                json!({"name": "Analytical Engines Ltd", "businessProfile": {"sizeRange": "1-10"}}),
            ),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(conv["status"], "active");
    assert_eq!(conv["type"], "business");
    assert_eq!(conv["name"], "Analytical Engines Ltd");
    assert_eq!(conv["firstName"], Value::Null);
    problem(
        send(
            &ctx,
            Method::POST,
            &format!("{loc}/convert"),
            &t,
            Some(json!({})),
        )
        .await,
        StatusCode::CONFLICT,
        "NOT_A_LEAD",
    )
    .await;

    let d = ok(
        send(&ctx, Method::POST, &format!("{loc}/disable"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(d["disabled"], true);
    // Disabling twice changes nothing.
    let again = ok(
        send(&ctx, Method::POST, &format!("{loc}/disable"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["version"], d["version"]);
    let e = ok(
        send(&ctx, Method::POST, &format!("{loc}/enable"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(e["disabled"], false);

    let kinds: Vec<String> = ctx
        .events()
        .await
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("client."))
        .collect();
    assert_eq!(
        kinds,
        [
            "client.created",
            "client.updated",
            "client.disabled",
            "client.enabled"
        ]
    );
}
