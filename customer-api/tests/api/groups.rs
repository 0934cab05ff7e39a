use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit;

use crate::fixtures::{acme_client, send, tenant_setup};
use crate::ok;
use crate::{Ctx, invalid, problem};

/// A tenant with four groups (Retail 0 `pl-retail`, Gold 10 `pl-gold`, Silver 10 `pl-silver`,
/// Newsletter 99 without a price list) and one client that joined Retail, Silver, Gold and
/// Newsletter, in that order.
struct Tiers {
    ctx: Ctx,
    t: String,
    cid: String,
    clients: String,
    groups: String,
    client_id: String,
    retail: String,
    gold: String,
    silver: String,
    news: String,
}

impl Tiers {
    async fn new(tag: &str) -> Tiers {
        let ctx = Ctx::new().await;
        let (cid, t, clients) = tenant_setup(&ctx, tag).await;
        let groups = format!("/v1/customers/{cid}/groups");
        let mut ids = Vec::new();
        for (name, prio, pl) in [
            ("Retail", 0, Some("pl-retail")),
            ("Gold", 10, Some("pl-gold")),
            ("Silver", 10, Some("pl-silver")),
            ("Newsletter", 99, None),
        ] {
            let g = ok(
                send(&ctx, Method::POST, &groups, &t, Some(group(name, prio, pl))).await,
                StatusCode::CREATED,
            )
            .await;
            ids.push(g["id"].as_str().unwrap().to_string());
        }
        let c = ok(
            send(&ctx, Method::POST, &clients, &t, Some(acme_client())).await,
            StatusCode::CREATED,
        )
        .await;
        let client_id = c["id"].as_str().unwrap().to_string();
        let [retail, gold, silver, news] = <[String; 4]>::try_from(ids).unwrap();
        let tiers = Tiers {
            ctx,
            t,
            cid,
            clients,
            groups,
            client_id,
            retail,
            gold,
            silver,
            news,
        };
        for g in [&tiers.retail, &tiers.silver, &tiers.gold, &tiers.news] {
            ok(
                send(&tiers.ctx, Method::PUT, &tiers.member(g), &tiers.t, None).await,
                StatusCode::CREATED,
            )
            .await;
        }
        tiers
    }

    fn group(&self, id: &str) -> String {
        format!("{}/{id}", self.groups)
    }

    fn member(&self, group: &str) -> String {
        format!("{}/{group}/members/{}", self.groups, self.client_id)
    }

    fn pricing_path(&self) -> String {
        format!(
            "/internal/v1/customers/{}/clients/{}/groups",
            self.cid, self.client_id
        )
    }

    async fn effective_price_list(&self) -> Value {
        let pricing = ok(
            send(
                &self.ctx,
                Method::GET,
                &self.pricing_path(),
                &service_token(),
                None,
            )
            .await,
            StatusCode::OK,
        )
        .await;
        pricing["effectivePriceListId"].clone()
    }
}

fn group(name: &str, prio: i32, pl: Option<&str>) -> Value {
    json!({"name": name, "priority": prio, "priceListId": pl})
}

#[tokio::test]
async fn group_names_are_unique_and_priority_and_price_list_are_checked() {
    let ctx = Ctx::new().await;
    let (cid, t, _) = tenant_setup(&ctx, "group-rules").await;
    let groups = format!("/v1/customers/{cid}/groups");
    ok(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(group("Gold", 10, Some("pl-gold"))),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    problem(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(group("gold", 1, None)),
        )
        .await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;
    invalid(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(group("X", 5000, None)),
        )
        .await,
        "priority",
    )
    .await;
    invalid(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(json!({"name": "Y", "priceListId": ""})),
        )
        .await,
        "priceListId",
    )
    .await;
}

#[tokio::test]
async fn putting_a_member_twice_returns_the_existing_membership() {
    let g = Tiers::new("groups-twice").await;
    let again = ok(
        send(&g.ctx, Method::PUT, &g.member(&g.retail), &g.t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["assignedBy"], "editor");
    assert_eq!(again["groupId"], g.retail.as_str());
}

#[tokio::test]
async fn the_effective_price_list_is_the_highest_priority_then_the_oldest_membership() {
    let g = Tiers::new("groups-price").await;
    // Silver and Gold tie at 10: Silver was joined first. Newsletter has no price list.
    let pricing = ok(
        send(
            &g.ctx,
            Method::GET,
            &g.pricing_path(),
            &service_token(),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pricing["effectivePriceListId"], "pl-silver");
    let order: Vec<&str> = pricing["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["Newsletter", "Silver", "Gold", "Retail"]);

    // Removing Silver makes Gold effective; deleting Gold falls back to Retail.
    let res = send(&g.ctx, Method::DELETE, &g.member(&g.silver), &g.t, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(
        send(&g.ctx, Method::DELETE, &g.member(&g.silver), &g.t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(g.effective_price_list().await, "pl-gold");
    let res = send(&g.ctx, Method::DELETE, &g.group(&g.gold), &g.t, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(g.effective_price_list().await, "pl-retail");

    let kinds: Vec<String> = g.ctx.events().await.into_iter().map(|(k, _)| k).collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("client_group.created"), 4);
    assert_eq!(count("client.group_assigned"), 4);
    // One explicit removal and one through the group's deletion.
    assert_eq!(count("client.group_removed"), 2);
    assert_eq!(count("client_group.deleted"), 1);
}

#[tokio::test]
async fn client_pricing_answers_a_service_token_only() {
    let g = Tiers::new("groups-internal").await;
    // Not the tenant's own token, nor a platform admin's.
    let admin = testkit::token(
        "operator",
        None,
        &[Permission::PlatformAdminViewAllCustomers],
    );
    for token in [&g.t, &admin] {
        problem(
            send(&g.ctx, Method::GET, &g.pricing_path(), token, None).await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
    }
    assert_eq!(g.effective_price_list().await, "pl-silver");
}

#[tokio::test]
async fn members_are_listed_counted_and_filter_the_client_list() {
    let g = Tiers::new("groups-members").await;
    let listed = ok(
        send(
            &g.ctx,
            Method::GET,
            &format!("{}/members", g.group(&g.gold)),
            &g.t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"][0]["clientId"], g.client_id.as_str());
    let gold = ok(
        send(&g.ctx, Method::GET, &g.group(&g.gold), &g.t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(gold["memberCount"], 1);
    let filtered = ok(
        send(
            &g.ctx,
            Method::GET,
            &format!("{}?group={}", g.clients, g.gold),
            &g.t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_group_patch_honours_if_match_and_names_its_changes() {
    let g = Tiers::new("groups-patch").await;
    let retail = g.group(&g.retail);
    let stale = g
        .ctx
        .req(Method::PATCH, &retail, Some(&g.t))
        .header("if-match", "\"5\"")
        .json(&json!({"priority": 50}))
        .send()
        .await
        .unwrap();
    problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    )
    .await;
    let p = ok(
        send(
            &g.ctx,
            Method::PATCH,
            &retail,
            &g.t,
            Some(json!({"priceListId": null, "description": "Everyone"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(p["priceListId"], Value::Null);
    assert_eq!(p["version"], 2);
    let updates: Vec<Value> = g
        .ctx
        .events()
        .await
        .into_iter()
        .filter(|(k, _)| k == "client_group.updated")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(updates.len(), 1);
    let mut changed: Vec<&str> = updates[0]["data"]["changedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    changed.sort();
    assert_eq!(changed, ["description", "priceListId"]);
    g.ctx.assert_updates_name_their_changes().await;
}

/// The token of a platform service reading client snapshots.
pub fn service_token() -> String {
    testkit::token("order-service", None, &[Permission::ReadClientSnapshots])
}
