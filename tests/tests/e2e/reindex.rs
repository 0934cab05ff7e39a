//! A tenant's index rebuilt from customer-api's and org-structure's snapshots while clients
//! keep being created and renamed over customer-api's API: after the switch, search holds
//! exactly what the owners hold (lost documents back, a document the owners no longer have
//! gone, every concurrent write kept).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit;
use tests::SearchPlatform;

use crate::call;

/// The names search finds of `kind`.
async fn found(http: &reqwest::Client, base: &str, token: &str, kind: &str) -> BTreeSet<String> {
    let res = call(
        http,
        reqwest::Method::POST,
        &format!("{base}/v1/search"),
        token,
        Some(json!({"kinds": [kind], "limit": 100})),
    )
    .await;
    res["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_tenant_reindexed_while_writes_continue_loses_nothing() {
    // Small pages at a low rate, so that the snapshot is read over a second and more while
    // the writes go on.
    let p = SearchPlatform::start(
        "e2e-reindex",
        &[
            ("SNAPSHOT__PAGE_SIZE", "4"),
            ("SNAPSHOT__ROWS_PER_SECOND", "20"),
        ],
    )
    .await;
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
    let post = reqwest::Method::POST;
    let customer = call(
        &http,
        post.clone(),
        &format!("{}/v1/customers", p.api.base),
        &admin,
        Some(json!({"name": "Pendant Publishing", "type": "business",
            "bootstrapTenantKey": "pendant-e2e"})),
    )
    .await;
    let cid = customer["id"].as_str().unwrap().to_string();
    let clients = format!("{}/v1/customers/{cid}/clients", p.api.base);
    let mut ids = Vec::new();
    for i in 0..20 {
        let c = call(
            &http,
            post.clone(),
            &clients,
            &admin,
            Some(json!({"type": "business", "name": format!("Client {i:02}")})),
        )
        .await;
        ids.push(c["id"].as_str().unwrap().to_string());
    }
    let start = Instant::now();
    while found(&http, &p.search.base, &admin, "client").await.len() < 20 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the clients were not indexed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Contacts in org-structure (which learns of the customer from customer-api's events:
    // until then, 404).
    let contacts = format!("{}/v1/customers/{cid}/contacts", p.org.base);
    let mut contact_ids = Vec::new();
    for last in ["Peterman", "Costanza", "Benes"] {
        let start = Instant::now();
        let contact: Value = loop {
            let res = http
                .post(&contacts)
                .bearer_auth(&admin)
                .json(&json!({"type": "billing", "firstName": "J", "lastName": last}))
                .send()
                .await
                .unwrap();
            if res.status() == 201 {
                break res.json().await.unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "org-structure: {}",
                res.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        contact_ids.push(
            contact["id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        );
    }
    let start = Instant::now();
    while found(&http, &p.search.base, &admin, "contact").await.len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the contacts were not indexed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Damage the index as lost events would: five clients' documents and a contact's gone, one
    // stale name, and a client the owners never had.
    let mut su = p.search_db.superuser().await;
    sqlx::query("DELETE FROM documents WHERE kind = 'contact' AND id = $1")
        .bind(contact_ids[0])
        .execute(&mut su)
        .await
        .unwrap();
    let lost: Vec<uuid::Uuid> = ids[..5].iter().map(|i| i.parse().unwrap()).collect();
    sqlx::query("DELETE FROM documents WHERE kind = 'client' AND id = ANY($1)")
        .bind(&lost)
        .execute(&mut su)
        .await
        .unwrap();
    sqlx::query("UPDATE documents SET name = 'Stale Name' WHERE kind = 'client' AND id = $1")
        .bind(ids[5].parse::<uuid::Uuid>().unwrap())
        .execute(&mut su)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO documents (kind, id, customer_id, client_id, version, name, indexed_at)
         VALUES ('client', $1, $2, $1, 1, 'Phantom Client', now() - interval '1 hour')",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(cid.parse::<uuid::Uuid>().unwrap())
    .execute(&mut su)
    .await
    .unwrap();
    assert!(
        found(&http, &p.search.base, &admin, "client")
            .await
            .contains("Phantom Client")
    );

    // Writes keep coming while the reindex runs.
    let writer = {
        let (http, clients, admin, ids) =
            (http.clone(), clients.clone(), admin.clone(), ids.clone());
        tokio::spawn(async move {
            for i in 0..20 {
                call(
                    &http,
                    reqwest::Method::POST,
                    &clients,
                    &admin,
                    Some(json!({"type": "business", "name": format!("During {i:02}")})),
                )
                .await;
                if i < 5 {
                    call(
                        &http,
                        reqwest::Method::PATCH,
                        &format!("{clients}/{}", ids[10 + i]),
                        &admin,
                        Some(json!({"name": format!("Renamed {i:02}")})),
                    )
                    .await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let reindexes = format!("{}/v1/reindexes", p.search.base);
    let started = call(
        &http,
        post.clone(),
        &reindexes,
        &admin,
        Some(json!({"customerId": cid})),
    )
    .await;
    let id = started["id"].as_str().unwrap();
    let start = Instant::now();
    let done = loop {
        let r = call(
            &http,
            reqwest::Method::GET,
            &format!("{reindexes}/{id}"),
            &admin,
            None,
        )
        .await;
        if r["state"] != "running" {
            break r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still running: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["state"], "completed", "{done}");
    assert!(done["removed"].as_i64().unwrap() >= 1, "{done}");
    writer.await.unwrap();

    // Search ends at exactly the owner's clients.
    let mut owned = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{clients}?limit=100&cursor={c}"),
            None => format!("{clients}?limit=100"),
        };
        let page = call(&http, reqwest::Method::GET, &url, &admin, None).await;
        for c in page["items"].as_array().unwrap() {
            owned.insert(c["name"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(owned.len(), 40);
    let start = Instant::now();
    loop {
        let names = found(&http, &p.search.base, &admin, "client").await;
        if names == owned {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "search: {:?} missing, {:?} extra",
            owned.difference(&names).collect::<Vec<_>>(),
            names.difference(&owned).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let people = found(&http, &p.search.base, &admin, "contact").await;
    let expected = ["J Benes", "J Costanza", "J Peterman"].map(String::from);
    assert_eq!(people, BTreeSet::from(expected));
    let customers = found(&http, &p.search.base, &admin, "customer").await;
    assert_eq!(
        customers,
        BTreeSet::from(["Pendant Publishing".to_string()])
    );
    p.stop().await;
}
