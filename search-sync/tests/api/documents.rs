//! The index kept from customer-api's and org-structure's events.

use serde_json::{Value, json};
use shared_model::db::{self, Scope};
use shared_model::events::client as cl;
use shared_model::events::customer as cu;
use shared_model::events::org;
use shared_model::events::{CloudEvent, EventType};
use shared_model::ids::{ClientId, ContactId, CustomerId, GroupId};
use shared_model::testkit::{self, events};

use crate::Ctx;

/// The event of `kind` from `source` carrying `data`: about `data.id`, of `data.customerId`
/// (of itself, for a customer).
fn event_of(source: &str, kind: EventType, data: &Value) -> CloudEvent {
    let owner = data.get("customerId").unwrap_or(&data["id"]);
    let owner: CustomerId = serde_json::from_value(owner.clone()).unwrap();
    events::event(source, kind, data["id"].as_str().unwrap(), owner, data)
}

/// A `customer.*` or `client.*` event.
fn customer(kind: EventType, data: &Value) -> CloudEvent {
    event_of("/customer-api", kind, data)
}

/// A `contact.*` event.
fn contact(kind: EventType, data: &Value) -> CloudEvent {
    event_of("/org-structure", kind, data)
}

#[tokio::test]
async fn customers_clients_and_contacts_are_indexed_with_their_search_fields() {
    let ctx = Ctx::new().await;
    let (c, k, p, g) = (
        CustomerId::new(),
        ClientId::new(),
        ContactId::new(),
        GroupId::new(),
    );
    let mut cd = events::customer_data(c, 1);
    cd["name"] = json!("Crème Brûlée SARL");
    cd["email"] = json!("hello@creme.example");
    cd["website"] = json!("https://www.Creme.example/about");
    cd["address"] = json!({"lines": ["1 Rue"], "city": "Lyon", "region": null, "postalCode": null, "country": "FR"});
    cd["businessProfile"] = json!({"industrySector": "industrials", "industryGroup": null,
        "classification": null, "sizeRange": null, "socialProfiles": [], "externalId": "ERP-7"});
    let mut kd = events::client_data(c, k, 1);
    kd["tags"] = json!(["vip", "eu"]);
    kd["assignee"] = json!("sam");
    kd["email"] = json!("buyer@globex.example");
    let mut pd = events::contact_data(c, Some(k), p, 1);
    pd["mobile"] = json!("+15550100200");
    let membership = json!({"customerId": c, "clientId": k, "groupId": g,
        "assignedAt": "2026-01-01T00:00:00Z", "assignedBy": "admin"});
    testkit::publish(
        &ctx.amqp,
        &[
            customer(cu::CREATED, &cd),
            customer(cl::CREATED, &kd),
            events::event("/customer-api", cl::GROUP_ASSIGNED, k, c, &membership),
            contact(org::CONTACT_CREATED, &pd),
        ],
    )
    .await;

    let doc = ctx
        .document_until(c.as_uuid(), "the customer is indexed", |d| d.is_some())
        .await
        .unwrap();
    assert_eq!(doc.kind, "customer");
    assert_eq!(doc.customer_id, c.as_uuid());
    assert_eq!(
        doc.folded_name, "creme brulee sarl",
        "lower case, accents folded"
    );
    assert_eq!(doc.domain.as_deref(), Some("creme.example"));
    assert_eq!(doc.email.as_deref(), Some("hello@creme.example"));
    assert_eq!(
        (doc.country.as_deref(), doc.city.as_deref()),
        (Some("FR"), Some("Lyon"))
    );
    assert_eq!(doc.industry_sector.as_deref(), Some("industrials"));
    assert_eq!(doc.doc_type.as_deref(), Some("business"));
    assert_eq!(doc.status.as_deref(), Some("active"));
    assert!(doc.enabled);
    assert_eq!(doc.codes, [format!("k-{c}")]);

    let doc = ctx
        .document_until(k.as_uuid(), "the client joins its group", |d| {
            d.is_some_and(|d| !d.groups.is_empty())
        })
        .await
        .unwrap();
    assert_eq!(
        (doc.kind.as_str(), doc.client_id),
        ("client", Some(k.as_uuid()))
    );
    assert_eq!(doc.tags, ["vip", "eu"]);
    assert_eq!(doc.assignee.as_deref(), Some("sam"));
    assert_eq!(doc.domain.as_deref(), Some("globex.example"));
    assert_eq!(doc.groups, [g.as_uuid()]);

    let doc = ctx
        .document_until(p.as_uuid(), "the contact is indexed", |d| d.is_some())
        .await
        .unwrap();
    assert_eq!(doc.name, "Jane Doe");
    assert_eq!(
        (doc.customer_id, doc.client_id),
        (c.as_uuid(), Some(k.as_uuid()))
    );
    assert_eq!(doc.doc_type.as_deref(), Some("billing"));
    assert_eq!(doc.codes, ["+15550100200"]);

    // The group leaves the client; a redelivered removal changes nothing more.
    let removed = events::event("/customer-api", cl::GROUP_REMOVED, k, c, &membership);
    testkit::publish(&ctx.amqp, &[removed.clone(), removed]).await;
    ctx.document_until(k.as_uuid(), "the client leaves its group", |d| {
        d.is_some_and(|d| d.groups.is_empty())
    })
    .await;
}

#[tokio::test]
async fn a_stale_or_redelivered_event_does_not_regress_a_document() {
    let ctx = Ctx::new().await;
    let c = CustomerId::new();
    let mut v3 = events::customer_data(c, 3);
    v3["name"] = json!("Newest Name");
    let mut v2 = events::customer_data(c, 2);
    v2["name"] = json!("Older Name");
    let newest = customer(cu::UPDATED, &v3);
    testkit::publish(&ctx.amqp, std::slice::from_ref(&newest)).await;
    ctx.document_until(c.as_uuid(), "v3 is indexed", |d| {
        d.is_some_and(|d| d.version == 3)
    })
    .await;
    // The older state, then the same event again.
    let late = [customer(cu::UPDATED, &v2), newest];
    testkit::publish(&ctx.amqp, &late).await;
    ctx.consumed(&late).await;
    let doc = ctx.document(c.as_uuid()).await.unwrap();
    assert_eq!((doc.version, doc.name.as_str()), (3, "Newest Name"));

    // Deactivation is a newer state: the document says so.
    let mut v4 = events::customer_data(c, 4);
    v4["status"] = json!("deactivated");
    testkit::publish(&ctx.amqp, &[customer(cu::DEACTIVATED, &v4)]).await;
    let doc = ctx
        .document_until(c.as_uuid(), "v4 is indexed", |d| {
            d.is_some_and(|d| d.version == 4)
        })
        .await
        .unwrap();
    assert_eq!(doc.status.as_deref(), Some("deactivated"));
    assert!(!doc.enabled);
}

#[tokio::test]
async fn a_deleted_customer_takes_its_clients_and_contacts_out_and_they_stay_out() {
    let ctx = Ctx::new().await;
    let (c, k, p, q) = (
        CustomerId::new(),
        ClientId::new(),
        ContactId::new(),
        ContactId::new(),
    );
    let other = CustomerId::new();
    testkit::publish(
        &ctx.amqp,
        &[
            customer(cu::CREATED, &events::customer_data(c, 1)),
            customer(cl::CREATED, &events::client_data(c, k, 1)),
            contact(
                org::CONTACT_CREATED,
                &events::contact_data(c, Some(k), p, 1),
            ),
            contact(org::CONTACT_CREATED, &events::contact_data(c, None, q, 1)),
            customer(cu::CREATED, &events::customer_data(other, 1)),
        ],
    )
    .await;
    ctx.document_until(q.as_uuid(), "the customer's contact is indexed", |d| {
        d.is_some()
    })
    .await;
    ctx.document_until(other.as_uuid(), "the other customer is indexed", |d| {
        d.is_some()
    })
    .await;

    testkit::publish(
        &ctx.amqp,
        &[customer(cu::DELETED, &events::customer_data(c, 2))],
    )
    .await;
    let doc = ctx
        .document_until(c.as_uuid(), "the customer's tombstone", |d| {
            d.is_some_and(|d| d.deleted)
        })
        .await
        .unwrap();
    assert_eq!(
        (doc.version, doc.name.as_str(), doc.enabled),
        (2, "", false)
    );
    for id in [k.as_uuid(), p.as_uuid(), q.as_uuid()] {
        assert!(ctx.document(id).await.is_none(), "{id} is still indexed");
    }

    // Late events of the deleted customer's entities (a redelivery, a replayed dead letter)
    // bring nothing back; the other customer is untouched.
    let mut late = events::client_data(c, k, 7);
    late["name"] = json!("Back From The Dead");
    let late = [
        customer(cu::UPDATED, &events::customer_data(c, 1)),
        customer(cl::UPDATED, &late),
        contact(
            org::CONTACT_UPDATED,
            &events::contact_data(c, Some(k), p, 5),
        ),
        contact(org::CONTACT_DELETED, &events::contact_data(c, None, q, 5)),
    ];
    testkit::publish(&ctx.amqp, &late).await;
    ctx.consumed(&late).await;
    let docs = ctx.documents().await;
    let of_c: Vec<_> = docs
        .iter()
        .filter(|d| d.customer_id == c.as_uuid())
        .collect();
    assert_eq!(of_c.len(), 1, "only the customer's tombstone: {of_c:?}");
    assert!(of_c[0].deleted && of_c[0].version == 2);
    assert!(
        ctx.document(other.as_uuid())
            .await
            .is_some_and(|d| !d.deleted)
    );
}

#[tokio::test]
async fn a_deleted_client_takes_its_contacts_out() {
    let ctx = Ctx::new().await;
    let (c, k, p, q) = (
        CustomerId::new(),
        ClientId::new(),
        ContactId::new(),
        ContactId::new(),
    );
    testkit::publish(
        &ctx.amqp,
        &[
            customer(cl::CREATED, &events::client_data(c, k, 1)),
            contact(
                org::CONTACT_CREATED,
                &events::contact_data(c, Some(k), p, 1),
            ),
            contact(org::CONTACT_CREATED, &events::contact_data(c, None, q, 1)),
        ],
    )
    .await;
    ctx.document_until(q.as_uuid(), "the contacts are indexed", |d| d.is_some())
        .await;
    testkit::publish(
        &ctx.amqp,
        &[customer(cl::DELETED, &events::client_data(c, k, 2))],
    )
    .await;
    ctx.document_until(k.as_uuid(), "the client's tombstone", |d| {
        d.is_some_and(|d| d.deleted)
    })
    .await;
    assert!(
        ctx.document(p.as_uuid()).await.is_none(),
        "the client's contact is gone"
    );
    assert!(
        ctx.document(q.as_uuid()).await.is_some(),
        "the customer's own contact stays"
    );
    // A contact deleted on its own leaves a tombstone.
    testkit::publish(
        &ctx.amqp,
        &[contact(
            org::CONTACT_DELETED,
            &events::contact_data(c, None, q, 2),
        )],
    )
    .await;
    ctx.document_until(q.as_uuid(), "the contact's tombstone", |d| {
        d.is_some_and(|d| d.deleted)
    })
    .await;
}

#[tokio::test]
async fn a_tenant_reaches_its_own_documents_and_its_sub_tenants_and_no_others() {
    let ctx = Ctx::new().await;
    let (parent, child, stranger) = (CustomerId::new(), CustomerId::new(), CustomerId::new());
    let k = ClientId::new();
    let mut child_data = events::customer_data(child, 1);
    child_data["parentCustomerId"] = json!(parent);
    let created = [
        customer(cu::CREATED, &events::customer_data(parent, 1)),
        customer(cu::CREATED, &child_data),
        customer(cu::CREATED, &events::customer_data(stranger, 1)),
        customer(cl::CREATED, &events::client_data(stranger, k, 1)),
        customer(
            cl::CREATED,
            &events::client_data(parent, ClientId::new(), 1),
        ),
    ];
    testkit::publish(&ctx.amqp, &created).await;
    ctx.consumed(&created).await;
    assert_eq!(ctx.documents().await.len(), 5);
    // As the service's own role, scoped to the parent tenant.
    let mut tx = db::begin(&ctx.db.pool, Scope::Tenant(parent))
        .await
        .unwrap();
    let seen: Vec<(uuid::Uuid, uuid::Uuid)> =
        sqlx::query_as("SELECT id, customer_id FROM documents")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(
        seen.len(),
        3,
        "itself, its client and its sub-tenant: {seen:?}"
    );
    assert!(seen.iter().any(|(id, _)| *id == child.as_uuid()));
    assert!(seen.iter().all(|(_, c)| *c != stranger.as_uuid()));
    // Nor can it write a document of another tenant.
    let wrote = sqlx::query(
        "INSERT INTO documents (kind, id, customer_id, version) VALUES ('customer', $1, $1, 1)",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&mut *tx)
    .await;
    assert!(
        wrote.is_err(),
        "row-level security refuses another tenant's row"
    );
}

/// A `client_address.*` payload of the client.
fn address(
    c: CustomerId,
    k: ClientId,
    id: uuid::Uuid,
    city: &str,
    billing: bool,
    version: i64,
) -> Value {
    json!({"id": id, "customerId": c, "clientId": k, "label": null, "lines": ["1 Main St"],
        "city": city, "region": null, "postalCode": null, "country": "DE",
        "defaultShipping": false, "defaultBilling": billing, "version": version,
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"})
}

#[tokio::test]
async fn a_clients_place_is_its_default_billing_address_else_its_oldest() {
    let ctx = Ctx::new().await;
    let (c, k) = (CustomerId::new(), ClientId::new());
    let (first, billing) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let place = |d: Option<&crate::Doc>| {
        d.map(|d| {
            (
                d.city.clone().unwrap_or_default(),
                d.country.clone().unwrap_or_default(),
            )
        })
    };
    // An address before the client's creation is not lost: the document takes it when written.
    testkit::publish(
        &ctx.amqp,
        &[
            customer(
                cl::ADDRESS_CREATED,
                &address(c, k, first, "Hamburg", false, 1),
            ),
            customer(cl::CREATED, &events::client_data(c, k, 1)),
        ],
    )
    .await;
    ctx.document_until(k.as_uuid(), "the client takes its only address", |d| {
        place(d) == Some(("Hamburg".into(), "DE".into()))
    })
    .await;
    // A default billing address wins; the client's own update keeps the place.
    testkit::publish(
        &ctx.amqp,
        &[
            customer(
                cl::ADDRESS_CREATED,
                &address(c, k, billing, "Köln", true, 1),
            ),
            customer(cl::UPDATED, &events::client_data(c, k, 2)),
        ],
    )
    .await;
    let doc = ctx
        .document_until(k.as_uuid(), "the billing address wins", |d| {
            d.is_some_and(|d| d.version == 2 && d.city.as_deref() == Some("Köln"))
        })
        .await
        .unwrap();
    assert_eq!(doc.country.as_deref(), Some("DE"));
    // A stale update of the billing address changes nothing; its deletion falls back.
    let stale = [customer(
        cl::ADDRESS_UPDATED,
        &address(c, k, billing, "Bonn", true, 1),
    )];
    testkit::publish(&ctx.amqp, &stale).await;
    ctx.consumed(&stale).await;
    assert_eq!(
        ctx.document(k.as_uuid()).await.unwrap().city.as_deref(),
        Some("Köln")
    );
    testkit::publish(
        &ctx.amqp,
        &[customer(
            cl::ADDRESS_DELETED,
            &address(c, k, billing, "Köln", true, 2),
        )],
    )
    .await;
    ctx.document_until(k.as_uuid(), "the oldest address again", |d| {
        place(d) == Some(("Hamburg".into(), "DE".into()))
    })
    .await;
}
