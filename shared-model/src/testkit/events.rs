//! Events as the owning services publish them, for the tests of the services that consume
//! them: each payload has every field of its catalog type, with plain values a test changes
//! where it matters (`data["name"] = json!("...")`) before wrapping it with [`event`].

use serde_json::{Value, json};

use crate::envelope::{CloudEvent, EventType};
use crate::ids::{ClientId, ContactId, CustomerId};

/// A `customer.*` payload: an active business customer named Acme Corp without an address.
pub fn customer_data(id: CustomerId, version: i64) -> Value {
    json!({
        "id": id, "name": "Acme Corp", "type": "business", "email": null, "phone": null,
        "website": null, "address": null, "locale": null, "businessProfile": null,
        "sessionExpirationSeconds": null, "bootstrapTenantKey": format!("k-{id}"),
        "products": [], "status": "active", "parentCustomerId": null, "parentClientId": null,
        "deactivatedAt": null, "windowEndsAt": null, "logo": null, "version": version,
        "createdAt": "2026-01-01T00:00:00Z", "createdBy": "admin",
        "updatedAt": "2026-01-01T00:00:00Z", "updatedBy": "admin"
    })
}

/// A `client.*` payload: an active business client named Globex.
pub fn client_data(customer: CustomerId, id: ClientId, version: i64) -> Value {
    json!({
        "id": id, "customerId": customer, "type": "business", "name": "Globex",
        "firstName": null, "lastName": null, "email": null, "phone": null, "locale": null,
        "businessProfile": null, "externalId": null, "status": "active", "source": "direct",
        "assignee": null, "tags": [], "revenue": null, "disabled": false,
        "provisionedCustomerId": null, "logo": null, "version": version,
        "createdAt": "2026-01-01T00:00:00Z", "createdBy": "admin",
        "updatedAt": "2026-01-01T00:00:00Z", "updatedBy": "admin"
    })
}

/// A `contact.*` payload: an active billing contact Jane Doe of the customer, or of its client.
pub fn contact_data(
    customer: CustomerId,
    client: Option<ClientId>,
    id: ContactId,
    version: i64,
) -> Value {
    json!({
        "id": id, "customerId": customer, "clientId": client, "type": "billing",
        "primary": false, "salutation": null, "firstName": "Jane", "lastName": "Doe",
        "jobTitle": null, "email": null, "phone": null, "mobile": null, "locationId": null,
        "departmentId": null, "locale": null, "active": true, "version": version,
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"
    })
}

/// The event of `kind` about `subject` of `customer`, from `source`, carrying `data`.
pub fn event(
    source: &str,
    kind: EventType,
    subject: impl ToString,
    customer: CustomerId,
    data: &Value,
) -> CloudEvent {
    CloudEvent::new(source, kind, subject, Some(customer), "admin", None, data)
        .expect("a test event serializes")
}
