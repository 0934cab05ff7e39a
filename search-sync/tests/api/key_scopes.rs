//! A property of search keys: for random keys over a generated corpus of several tenants, and
//! random filters on the key and on the request, every hit lies within the key's reach and
//! its filter, and (for a search without text) the hits are exactly the documents the filter
//! tree's own model lets through.

use std::collections::{BTreeSet, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use search_sync::index::filter::{Column, Expr, Value as V};
use search_sync::index::{Document, Kind};
use search_sync::keys::KeyKind;
use search_sync::search::filter::{Filter, filter_expr};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::error::Validator;
use shared_model::ids::{ClientId, CustomerId};
use shared_model::testkit;

use crate::{Ctx, document};

const TAGS: [&str; 4] = ["vip", "eu", "us", "new"];
const COUNTRIES: [&str; 3] = ["DE", "US", "FR"];

/// Three tenants, each with a sub-tenant, four clients with a contact each, and a contact of
/// its own; every name holds "acme".
fn corpus(rng: &mut StdRng) -> (Vec<CustomerId>, Vec<Document>) {
    let mut docs = Vec::new();
    let mut tenants = Vec::new();
    for t in 0..3 {
        let tenant = CustomerId::new();
        let sub = CustomerId::new();
        tenants.push(tenant);
        for (id, parent, ty) in [
            (
                tenant,
                None,
                if t % 2 == 0 { "business" } else { "consumer" },
            ),
            (
                sub,
                Some(tenant),
                if t % 2 == 0 { "consumer" } else { "business" },
            ),
        ] {
            let mut d = document(Kind::Customer, id.as_uuid(), id, None, "Acme Customer");
            d.parent_id = parent;
            d.doc_type = Some(ty.into());
            d.country = Some(COUNTRIES[rng.random_range(0..3)].into());
            docs.push(d);
        }
        for _ in 0..4 {
            let id = uuid::Uuid::now_v7();
            let mut c = document(Kind::Client, id, tenant, Some(ClientId(id)), "Acme Client");
            c.tags = TAGS
                .iter()
                .filter(|_| rng.random_bool(0.4))
                .map(|t| t.to_string())
                .collect();
            c.country = Some(COUNTRIES[rng.random_range(0..3)].into());
            c.enabled = rng.random_bool(0.7);
            c.doc_type = Some(
                if rng.random_bool(0.5) {
                    "person"
                } else {
                    "company"
                }
                .into(),
            );
            let mut p = document(
                Kind::Contact,
                uuid::Uuid::now_v7(),
                tenant,
                Some(ClientId(id)),
                "Acme Contact",
            );
            p.enabled = rng.random_bool(0.8);
            docs.push(c);
            docs.push(p);
        }
        docs.push(document(
            Kind::Contact,
            uuid::Uuid::now_v7(),
            tenant,
            None,
            "Acme Reception",
        ));
    }
    (tenants, docs)
}

/// A random filter of at most `depth` levels, in the request's form.
fn filter(rng: &mut StdRng, depth: u32) -> Value {
    let leaf = |rng: &mut StdRng| match rng.random_range(0..5) {
        0 => json!({"eq": {"field": "country", "value": COUNTRIES[rng.random_range(0..3)]}}),
        1 => json!({"in": {"field": "type", "values": ["business", "person"]}}),
        2 => json!({"enabled": rng.random_bool(0.5)}),
        3 => json!({"tags": {"any": [TAGS[rng.random_range(0..4)]]}}),
        _ => json!({"tags": {"all": [TAGS[rng.random_range(0..4)], TAGS[rng.random_range(0..4)]]}}),
    };
    if depth == 0 || rng.random_bool(0.5) {
        return leaf(rng);
    }
    match rng.random_range(0..3) {
        0 => json!({"and": [filter(rng, depth - 1), filter(rng, depth - 1)]}),
        1 => json!({"or": [filter(rng, depth - 1), filter(rng, depth - 1)]}),
        _ => json!({"not": filter(rng, depth - 1)}),
    }
}

fn expr(f: &Value) -> Expr {
    let f: Filter = serde_json::from_value(f.clone()).unwrap();
    let mut v = Validator::new();
    let e = filter_expr(&f, "filter", &mut v);
    v.finish().unwrap();
    e
}

/// A document's values of a column, as the filter model reads them.
fn values(d: &Document, c: Column) -> Vec<V> {
    let text = |s: &Option<String>| s.iter().map(|s| V::Text(s.clone())).collect();
    match c {
        Column::Kind => vec![V::Text(d.kind.as_str().into())],
        Column::Id => vec![V::Uuid(d.id)],
        Column::CustomerId => vec![V::Uuid(d.customer_id.as_uuid())],
        Column::ClientId => d.client_id.iter().map(|c| V::Uuid(c.as_uuid())).collect(),
        Column::ParentId => d.parent_id.iter().map(|c| V::Uuid(c.as_uuid())).collect(),
        Column::Type => text(&d.doc_type),
        Column::Country => text(&d.country),
        Column::Enabled => vec![V::Bool(d.enabled)],
        Column::Tags => d.tags.iter().map(|t| V::Text(t.clone())).collect(),
        Column::Version => vec![V::Int(d.version)],
        other => panic!("the corpus sets no {other:?}"),
    }
}

#[tokio::test]
async fn no_hit_ever_falls_outside_a_keys_scope() {
    let ctx = Ctx::new().await;
    let mut rng = StdRng::seed_from_u64(21);
    let (tenants, docs) = corpus(&mut rng);
    ctx.index(&docs).await;
    let by_id: HashMap<uuid::Uuid, &Document> = docs.iter().map(|d| (d.id, d)).collect();
    let admin = ctx.client().as_user(&testkit::token(
        "admin",
        None,
        &[Permission::PlatformAdminSearchAllCustomers],
    ));
    let mut hits_seen = 0;
    for case in 0..120 {
        let kind = KeyKind::ALL[rng.random_range(0..5)];
        let customer = kind
            .is_tenant()
            .then(|| tenants[rng.random_range(0..tenants.len())]);
        let key_filter = rng.random_bool(0.6).then(|| filter(&mut rng, 2));
        let mut body = json!({"name": format!("case {case}"), "kind": kind, "ttlSeconds": 600});
        if let Some(c) = customer {
            body["customerId"] = json!(c);
        }
        if let Some(f) = &key_filter {
            body["filter"] = f.clone();
        }
        let issued: Value = admin
            .send(Method::POST, "/v1/search-keys", Some(&body))
            .await
            .expect(StatusCode::CREATED);
        let secret = issued["secret"].as_str().unwrap();
        let request_filter = rng.random_bool(0.7).then(|| filter(&mut rng, 3));
        let q = if rng.random_bool(0.5) { "acme" } else { "" };
        let mut search = json!({"q": q, "limit": 100});
        if let Some(f) = &request_filter {
            search["filter"] = f.clone();
        }
        let res: Value = ctx
            .client()
            .send(Method::POST, "/v1/search", Some(&search))
            .await
            .expect::<Value>(StatusCode::UNAUTHORIZED);
        assert_eq!(res["code"], "NOT_AUTHORIZED", "no key, no token");
        let res = reqwest::Client::new()
            .post(ctx.app.url("/v1/search"))
            .header("x-search-key", secret)
            .json(&search)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res: Value = res.json().await.unwrap();
        let reach = kind.reach(customer);
        let scope = match &key_filter {
            Some(f) => reach.filter.clone().and(expr(f)),
            None => reach.filter.clone(),
        };
        let all = match &request_filter {
            Some(f) => scope.clone().and(expr(f)),
            None => scope.clone(),
        };
        let got: BTreeSet<uuid::Uuid> = res["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().parse().unwrap())
            .collect();
        for id in &got {
            let d = by_id[id];
            assert!(
                scope.holds(&|c| values(d, c)),
                "case {case}: {kind:?} of {customer:?} with {key_filter:?} found {d:?} for {search}"
            );
        }
        let expected: BTreeSet<uuid::Uuid> = docs
            .iter()
            .filter(|d| all.holds(&|c| values(d, c)))
            .map(|d| d.id)
            .collect();
        assert_eq!(
            got, expected,
            "case {case}: {kind:?} of {customer:?}, key filter {key_filter:?}, search {search}"
        );
        hits_seen += got.len();
    }
    assert!(
        hits_seen > 100,
        "the cases found too little to prove much: {hits_seen}"
    );
}
