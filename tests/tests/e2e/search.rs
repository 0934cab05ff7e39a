//! customer-api, org-structure and search-sync together: customers, clients and contacts
//! created, renamed, tagged and deleted over their owners' APIs are found (or no longer found)
//! by search, each change within a second of its owner's answer.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit;
use tests::SearchPlatform;

use crate::call;

/// Longest a change may take to be found in this test: well above the freshness target (p99
/// 100 ms, measured by `bench search-freshness`), so a loaded CI machine does not fail it.
const WITHIN: Duration = Duration::from_secs(3);

struct Search<'a> {
    http: &'a reqwest::Client,
    url: String,
    token: String,
}

impl Search<'_> {
    /// Searches until `done` holds for the hits' names; how long that took.
    async fn until(&self, body: Value, what: &str, done: impl Fn(&[String]) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            let res: Value = self
                .http
                .post(&self.url)
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let names: Vec<String> = res["hits"]
                .as_array()
                .unwrap_or_else(|| panic!("{res}"))
                .iter()
                .map(|h| h["name"].as_str().unwrap().to_string())
                .collect();
            if done(&names) {
                return start.elapsed();
            }
            assert!(start.elapsed() < WITHIN, "{what}: still {names:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn changes_made_over_the_owners_apis_are_found_by_search() {
    let p = SearchPlatform::start("e2e-search", &[]).await;
    let (api, org, search_sync) = (&p.api, &p.org, &p.search);
    let http = reqwest::Client::new();
    let admin = testkit::token(
        "e2e-admin",
        None,
        &[
            Permission::PlatformAdminEditAllCustomers,
            Permission::PlatformAdminViewAllCustomers,
            Permission::PlatformAdminSearchAllCustomers,
        ],
    );
    let search = Search {
        http: &http,
        url: format!("{}/v1/search", search_sync.base),
        token: admin.clone(),
    };
    let q = |text: &str| json!({"q": text});
    let has = |name: &'static str| move |names: &[String]| names.iter().any(|n| n == name);
    let lacks = |name: &'static str| move |names: &[String]| names.iter().all(|n| n != name);
    let mut took = Vec::new();

    let customer = call(
        &http,
        reqwest::Method::POST,
        &format!("{}/v1/customers", api.base),
        &admin,
        Some(json!({"name": "Vandelay Industries", "type": "business",
            "bootstrapTenantKey": "vandelay-e2e"})),
    )
    .await;
    let cid = customer["id"].as_str().unwrap().to_string();
    took.push(
        search
            .until(
                q("vandelay"),
                "the new customer",
                has("Vandelay Industries"),
            )
            .await,
    );
    let clients = format!("{}/v1/customers/{cid}/clients", api.base);
    let client = call(
        &http,
        reqwest::Method::POST,
        &clients,
        &admin,
        Some(json!({"type": "business", "name": "Kramerica", "email": "info@kramerica.example"})),
    )
    .await;
    let kid = client["id"].as_str().unwrap().to_string();
    took.push(
        search
            .until(q("kramerica"), "the new client", has("Kramerica"))
            .await,
    );
    took.push(
        search
            .until(
                q("info@kram"),
                "the client's e-mail prefix",
                has("Kramerica"),
            )
            .await,
    );

    // Renamed, then tagged.
    call(
        &http,
        reqwest::Method::PATCH,
        &format!("{clients}/{kid}"),
        &admin,
        Some(json!({"name": "Kramerica Industries"})),
    )
    .await;
    took.push(
        search
            .until(
                q("kramerica industries"),
                "the renamed client",
                has("Kramerica Industries"),
            )
            .await,
    );
    let tag = call(
        &http,
        reqwest::Method::POST,
        &format!("{}/v1/customers/{cid}/tags", api.base),
        &admin,
        Some(json!({"name": "oil-tanker"})),
    )
    .await;
    call(
        &http,
        reqwest::Method::PUT,
        &format!("{clients}/{kid}/tags/{}", tag["id"].as_str().unwrap()),
        &admin,
        None,
    )
    .await;
    took.push(
        search
            .until(
                json!({"q": "kramerica", "filter": {"tags": {"any": ["oil-tanker"]}}}),
                "the tagged client",
                has("Kramerica Industries"),
            )
            .await,
    );

    // A contact of the client in org-structure, then deleted.
    // (org-structure learns of the client from customer-api's events: until then, 404.)
    let contacts = format!("{}/v1/customers/{cid}/clients/{kid}/contacts", org.base);
    let start = Instant::now();
    let contact: Value = loop {
        let res = http
            .post(&contacts)
            .bearer_auth(&admin)
            .json(&json!({"type": "billing", "firstName": "Art", "lastName": "Vandelay"}))
            .send()
            .await
            .unwrap();
        if res.status() == 201 {
            break res.json().await.unwrap();
        }
        assert!(start.elapsed() < WITHIN, "org-structure: {}", res.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    took.push(
        search
            .until(q("art vandelay"), "the new contact", has("Art Vandelay"))
            .await,
    );
    call(
        &http,
        reqwest::Method::DELETE,
        &format!("{contacts}/{}", contact["id"].as_str().unwrap()),
        &admin,
        None,
    )
    .await;
    took.push(
        search
            .until(
                q("art vandelay"),
                "the deleted contact",
                lacks("Art Vandelay"),
            )
            .await,
    );

    // The customer deleted: it and its client are no longer found.
    call(
        &http,
        reqwest::Method::DELETE,
        &format!("{}/v1/customers/{cid}", api.base),
        &admin,
        None,
    )
    .await;
    took.push(
        search
            .until(
                q("vandelay"),
                "the deleted customer",
                lacks("Vandelay Industries"),
            )
            .await,
    );
    took.push(
        search
            .until(
                q("kramerica"),
                "the deleted customer's client",
                lacks("Kramerica Industries"),
            )
            .await,
    );
    eprintln!("each change found after: {took:?}");

    p.stop().await;
}
