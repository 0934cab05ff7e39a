//! `POST /v1/search`: what each token reaches, filters, facets, sorts, pages, match ranges,
//! and the 4xx answers.

use std::collections::HashSet;

use reqwest::StatusCode;
use search_sync::index::{Document, Kind};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::ids::{ClientId, CustomerId};
use shared_model::testkit::{self, Client};
use time::OffsetDateTime;

use crate::{Ctx, document};

/// A tenant with a sub-tenant, clients and contacts, and another tenant.
pub struct World {
    pub ctx: Ctx,
    pub tenant: CustomerId,
    pub sub: CustomerId,
    pub bakery: ClientId,
    pub other: CustomerId,
}

fn client(customer: CustomerId, name: &str, country: &str, tags: &[&str], age: i64) -> Document {
    let id = uuid::Uuid::now_v7();
    let mut d = document(Kind::Client, id, customer, Some(ClientId(id)), name);
    d.country = Some(country.into());
    d.tags = tags.iter().map(|t| t.to_string()).collect();
    d.updated_at = OffsetDateTime::now_utc() - time::Duration::minutes(age);
    d
}

impl World {
    pub async fn new() -> World {
        let ctx = Ctx::new().await;
        let (tenant, sub, other) = (CustomerId::new(), CustomerId::new(), CustomerId::new());
        let customer = |id: CustomerId, name: &str, parent: Option<CustomerId>, t: &str| {
            let mut d = document(Kind::Customer, id.as_uuid(), id, None, name);
            d.parent_id = parent;
            d.doc_type = Some(t.into());
            d
        };
        let bakery = client(tenant, "Acme Bakery", "DE", &["vip", "food"], 4);
        let plumbing = client(tenant, "Acme Plumbing", "US", &["vip"], 3);
        let mut tools = client(tenant, "Zenith Acme Tools", "DE", &[], 2);
        tools.enabled = false;
        let mut peter = document(
            Kind::Contact,
            uuid::Uuid::now_v7(),
            tenant,
            bakery.client_id,
            "Peter Acme",
        );
        peter.email = Some("peter@acme-bakery.example".into());
        peter.updated_at = OffsetDateTime::now_utc() - time::Duration::minutes(1);
        let reception = document(
            Kind::Contact,
            uuid::Uuid::now_v7(),
            tenant,
            None,
            "Acme Reception",
        );
        let bakery_id = bakery.client_id.unwrap();
        ctx.index(&[
            customer(tenant, "Acme Holding", None, "business"),
            customer(sub, "Acme Subsidiary", Some(tenant), "consumer"),
            customer(other, "Acme Elsewhere", None, "business"),
            bakery,
            plumbing,
            tools,
            peter,
            reception,
            client(other, "Acme Foreign", "FR", &["vip"], 0),
        ])
        .await;
        World {
            ctx,
            tenant,
            sub,
            bakery: bakery_id,
            other,
        }
    }

    pub fn as_tenant(&self, permissions: &[Permission]) -> Client {
        self.ctx
            .client()
            .as_user(&testkit::token("t", Some(self.tenant), permissions))
    }
}

pub async fn search(c: &Client, body: Value) -> Value {
    c.send(reqwest::Method::POST, "/v1/search", Some(&body))
        .await
        .expect(StatusCode::OK)
}

pub fn names(res: &Value) -> Vec<String> {
    res["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_string())
        .collect()
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn each_token_reaches_what_its_permissions_reach() {
    let w = World::new().await;
    let acme = json!({"q": "acme"});
    let clients = w.as_tenant(&[Permission::ViewClient]);
    assert_eq!(
        sorted(names(&search(&clients, acme.clone()).await)),
        [
            "Acme Bakery",
            "Acme Plumbing",
            "Peter Acme",
            "Zenith Acme Tools"
        ]
    );
    let tenants = w.as_tenant(&[Permission::SearchTenants]);
    assert_eq!(
        names(&search(&tenants, acme.clone()).await),
        ["Acme Subsidiary"]
    );
    let own = w.as_tenant(&[Permission::ViewCustomer]);
    assert_eq!(
        sorted(names(&search(&own, acme.clone()).await)),
        ["Acme Holding", "Acme Reception"]
    );
    let all = w.as_tenant(&[
        Permission::ViewCustomer,
        Permission::ViewClient,
        Permission::SearchTenants,
    ]);
    assert_eq!(
        search(&all, acme.clone()).await["hits"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    // A token bound to a client reaches that client and its contacts, whatever else it holds.
    let bound = w.ctx.client().as_user(&testkit::client_token(
        "k",
        w.tenant,
        w.bakery,
        &[
            Permission::ViewClient,
            Permission::SearchTenants,
            Permission::ViewCustomer,
        ],
    ));
    assert_eq!(
        sorted(names(&search(&bound, acme.clone()).await)),
        ["Acme Bakery", "Peter Acme"]
    );
    // A filter naming another tenant finds nothing; the other tenant finds its own.
    let res = search(
        &clients,
        json!({"q": "acme", "filter": {"eq": {"field": "customerId", "value": w.other.to_string()}}}),
    )
    .await;
    assert!(names(&res).is_empty());
    let other = w.ctx.client().as_user(&testkit::token(
        "o",
        Some(w.other),
        &[Permission::ViewClient],
    ));
    assert_eq!(names(&search(&other, acme.clone()).await), ["Acme Foreign"]);
    // Platform admins reach every tenant.
    let admin = w.ctx.client().as_user(&testkit::token(
        "admin",
        None,
        &[Permission::PlatformAdminSearchAllCustomers],
    ));
    assert_eq!(
        search(&admin, acme.clone()).await["hits"]
            .as_array()
            .unwrap()
            .len(),
        9
    );

    // No permission to search, no customer, no token, a forged token.
    for token in [
        testkit::token("t", Some(w.tenant), &[Permission::EditCustomer]),
        testkit::token("t", None, &[Permission::ViewClient]),
        testkit::client_token("k", w.tenant, w.bakery, &[Permission::ViewCustomer]),
    ] {
        w.ctx
            .client()
            .as_user(&token)
            .send(reqwest::Method::POST, "/v1/search", Some(&acme))
            .await
            .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    w.ctx
        .client()
        .send(reqwest::Method::POST, "/v1/search", Some(&acme))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED");
    let forged = format!(
        "{}x",
        testkit::token("t", Some(w.tenant), &[Permission::ViewClient])
    );
    w.ctx
        .client()
        .as_user(&forged)
        .send(reqwest::Method::POST, "/v1/search", Some(&acme))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED");
}

#[tokio::test]
async fn filters_facets_sorts_and_matches() {
    let w = World::new().await;
    let c = w.as_tenant(&[Permission::ViewClient]);
    let clients = |filter: Value| json!({"q": "acme", "kinds": ["client"], "filter": filter});
    let res = search(
        &c,
        clients(json!({"eq": {"field": "country", "value": "DE"}})),
    )
    .await;
    assert_eq!(sorted(names(&res)), ["Acme Bakery", "Zenith Acme Tools"]);
    let res = search(&c, clients(json!({"tags": {"all": ["vip", "food"]}}))).await;
    assert_eq!(names(&res), ["Acme Bakery"]);
    let res = search(&c, clients(json!({"tags": {"any": ["food", "none"]}}))).await;
    assert_eq!(names(&res), ["Acme Bakery"]);
    let res = search(&c, clients(json!({"enabled": false}))).await;
    assert_eq!(names(&res), ["Zenith Acme Tools"]);
    let res = search(
        &c,
        clients(json!({"or": [
            {"in": {"field": "country", "values": ["US", "FR"]}},
            {"not": {"tags": {"any": ["vip"]}}},
        ]})),
    )
    .await;
    assert_eq!(sorted(names(&res)), ["Acme Plumbing", "Zenith Acme Tools"]);
    let past = (OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let res = search(
        &c,
        clients(json!({"range": {"field": "createdAt", "lt": past}})),
    )
    .await;
    assert!(names(&res).is_empty(), "all were created just now");
    let res = search(
        &c,
        clients(json!({"range": {"field": "version", "gte": 1, "lte": 1}})),
    )
    .await;
    assert_eq!(res["estimatedTotalHits"], 3);

    // Facets count every hit, most frequent first.
    let res = search(
        &c,
        json!({"q": "acme", "kinds": ["client"], "facets": ["country", "tags", "enabled"], "limit": 1}),
    )
    .await;
    assert_eq!(res["hits"].as_array().unwrap().len(), 1);
    assert_eq!(
        res["facets"]["country"],
        json!([{"value": "DE", "count": 2}, {"value": "US", "count": 1}])
    );
    assert_eq!(
        res["facets"]["tags"],
        json!([{"value": "vip", "count": 2}, {"value": "food", "count": 1}])
    );
    assert_eq!(
        res["facets"]["enabled"],
        json!([{"value": "true", "count": 2}, {"value": "false", "count": 1}])
    );
    assert!(res["processingTimeMs"].as_f64().unwrap() >= 0.0);

    // Sorts; relevance ties by the most recent update.
    let by = |sort: &str| json!({"q": "acme", "sort": sort});
    let four = [
        "Acme Bakery",
        "Acme Plumbing",
        "Peter Acme",
        "Zenith Acme Tools",
    ];
    assert_eq!(names(&search(&c, by("name")).await), four);
    let mut reversed = four.to_vec();
    reversed.reverse();
    assert_eq!(names(&search(&c, by("-name")).await), reversed);
    assert_eq!(
        names(&search(&c, by("relevance")).await),
        [
            "Peter Acme",
            "Zenith Acme Tools",
            "Acme Plumbing",
            "Acme Bakery"
        ]
    );
    // Without a text: everything in reach, most recently updated first.
    assert_eq!(
        names(&search(&c, json!({})).await),
        [
            "Peter Acme",
            "Zenith Acme Tools",
            "Acme Plumbing",
            "Acme Bakery"
        ]
    );

    // Match ranges for highlighting, in UTF-16 units.
    let res = search(&c, json!({"q": "peter@acme-b"})).await;
    assert_eq!(names(&res), ["Peter Acme"]);
    assert_eq!(
        res["hits"][0]["matches"],
        json!([
            {"field": "name", "ranges": [{"start": 0, "length": 5}, {"start": 6, "length": 4}]},
            {"field": "email", "ranges": [{"start": 0, "length": 12}]},
        ])
    );
    let res = search(&c, json!({"q": "zenit tools"})).await;
    assert_eq!(
        res["hits"][0]["matches"],
        json!([{"field": "name", "ranges": [{"start": 0, "length": 6}, {"start": 12, "length": 5}]}])
    );
}

#[tokio::test]
async fn pages_follow_each_other_without_overlap() {
    let w = World::new().await;
    let c = w.as_tenant(&[Permission::ViewClient]);
    for sort in ["relevance", "name", "-name", "createdAt", "-updatedAt"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut body = json!({"q": "acme", "sort": sort, "limit": 1});
            if let Some(c) = &cursor {
                body["cursor"] = json!(c);
            }
            let res = search(&c, body).await;
            assert_eq!(res["estimatedTotalHits"], 4, "{sort}: {res}");
            seen.extend(names(&res));
            match res["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
            assert!(seen.len() <= 4, "{sort}: {seen:?}");
        }
        assert_eq!(seen.len(), 4, "{sort}: {seen:?}");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 4, "{sort}");
        if sort == "name" {
            assert_eq!(seen[0], "Acme Bakery");
        }
    }
    // A cursor belongs to its sort.
    let res = search(&c, json!({"q": "acme", "sort": "name", "limit": 1})).await;
    let cursor = res["nextCursor"].as_str().unwrap();
    c.send(
        reqwest::Method::POST,
        "/v1/search",
        Some(&json!({"q": "acme", "cursor": cursor})),
    )
    .await
    .expect_invalid("cursor");
}

#[tokio::test]
async fn invalid_requests_name_the_field_and_rule() {
    let w = World::new().await;
    let c = w.as_tenant(&[Permission::ViewClient]);
    for (body, field) in [
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 101}), "limit"),
        (json!({"q": "a".repeat(201)}), "q"),
        (json!({"kinds": []}), "kinds"),
        (json!({"kinds": ["lead"]}), "kinds[0]"),
        (json!({"facets": ["city", "city"]}), "facets[1]"),
        (json!({"sort": "size"}), "sort"),
        (json!({"cursor": "not-a-cursor"}), "cursor"),
        (
            json!({"filter": {"eq": {"field": "clientId", "value": "x"}}}),
            "filter.eq.value",
        ),
        (
            json!({"filter": {"and": [{"enabled": true}, {"in": {"field": "country", "values": []}}]}}),
            "filter.and[1].in.values",
        ),
        (
            json!({"filter": {"range": {"field": "updatedAt", "gt": 5}}}),
            "filter.range.gt",
        ),
        (json!({"filter": {"like": "%"}}), "filter"),
        (
            json!({"filter": {"eq": {"field": "password", "value": "x"}}}),
            "filter.eq.field",
        ),
        (json!({"q": "a\u{0}b"}), "q"),
    ] {
        c.send(reqwest::Method::POST, "/v1/search", Some(&body))
            .await
            .expect_invalid(field);
    }
}

#[tokio::test]
async fn the_document_describes_the_search_and_its_filter_tree() {
    let doc = serde_json::to_value((search_sync::SERVICE.document)()).unwrap();
    let op = &doc["paths"]["/v1/search"]["post"];
    for status in ["200", "401", "403", "422"] {
        assert!(op["responses"][status].is_object(), "{status}: {op}");
    }
    let filter = &doc["components"]["schemas"]["Filter"];
    let variants: Vec<String> = filter["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{filter}"))
        .iter()
        .flat_map(|v| v["properties"].as_object().unwrap().keys().cloned())
        .collect();
    assert_eq!(
        variants,
        [
            "and", "or", "not", "eq", "in", "range", "enabled", "tags", "groups"
        ]
    );
    assert_eq!(
        filter["oneOf"][0]["properties"]["and"]["items"]["$ref"],
        "#/components/schemas/Filter"
    );
}
