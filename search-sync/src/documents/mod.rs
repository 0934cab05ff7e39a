//! The documents of customers, clients and contacts, as their owners' events describe them, and
//! the projections that keep the index from those events ([`reactions`]).

pub mod addresses;
pub mod reactions;

use shared_model::events::client::Client;
use shared_model::events::customer::{BusinessProfile, Customer};
use shared_model::events::org::Contact;
use shared_model::model::{CustomerStatus, Email, Phone};

use crate::index::{Document, Kind};

/// A business profile's search fields: sector, group, size range.
type Profile = (Option<String>, Option<String>, Option<String>);

fn profile(p: Option<&BusinessProfile>) -> Profile {
    let Some(p) = p else {
        return (None, None, None);
    };
    (
        p.industry_sector.map(|s| s.as_str().to_string()),
        p.industry_group.map(|g| g.as_str().to_string()),
        p.size_range.map(|s| s.as_str().to_string()),
    )
}

fn email(e: Option<&Email>) -> Option<String> {
    e.map(|e| e.as_str().to_string())
}

fn phone(p: Option<&Phone>) -> Option<String> {
    p.map(|p| p.as_str().to_string())
}

impl From<&Customer> for Document {
    fn from(c: &Customer) -> Document {
        let (industry_sector, industry_group, size_range) = profile(c.business_profile.as_ref());
        let address = c.address.as_ref();
        Document {
            kind: Kind::Customer,
            id: c.id.as_uuid(),
            customer_id: c.id,
            client_id: None,
            parent_id: c.parent_customer_id,
            version: c.version,
            name: c.name.clone(),
            email: email(c.email.as_ref()),
            phone: phone(c.phone.as_ref()),
            // The website's host, else the e-mail's domain.
            domain: c
                .website
                .as_ref()
                .and_then(|w| w.domain())
                .or_else(|| c.email.as_ref().map(|e| e.domain().to_string())),
            external_id: c
                .business_profile
                .as_ref()
                .and_then(|p| p.external_id.clone()),
            codes: vec![c.bootstrap_tenant_key.clone()],
            doc_type: Some(c.customer_type.as_str().to_string()),
            status: Some(c.status.as_str().to_string()),
            enabled: c.status == CustomerStatus::Active,
            tags: Vec::new(),
            assignee: None,
            country: address
                .and_then(|a| a.country.as_ref())
                .map(|c| c.as_str().to_string()),
            city: address.and_then(|a| a.city.clone()),
            industry_sector,
            industry_group,
            size_range,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

impl From<&Client> for Document {
    fn from(c: &Client) -> Document {
        let (industry_sector, industry_group, size_range) = profile(c.business_profile.as_ref());
        Document {
            kind: Kind::Client,
            id: c.id.as_uuid(),
            customer_id: c.customer_id,
            client_id: Some(c.id),
            parent_id: None,
            version: c.version,
            name: c.name.clone(),
            email: email(c.email.as_ref()),
            phone: phone(c.phone.as_ref()),
            domain: c.email.as_ref().map(|e| e.domain().to_string()),
            external_id: c.external_id.clone(),
            codes: Vec::new(),
            doc_type: Some(c.client_type.as_str().to_string()),
            status: Some(c.status.as_str().to_string()),
            enabled: !c.disabled,
            tags: c.tags.clone(),
            assignee: c.assignee.clone(),
            country: None,
            city: None,
            industry_sector,
            industry_group,
            size_range,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

impl From<&Contact> for Document {
    fn from(c: &Contact) -> Document {
        let name = match &c.first_name {
            Some(first) => format!("{first} {}", c.last_name),
            None => c.last_name.clone(),
        };
        Document {
            kind: Kind::Contact,
            id: c.id.as_uuid(),
            customer_id: c.customer_id,
            client_id: c.client_id,
            parent_id: None,
            version: c.version,
            name,
            email: email(c.email.as_ref()),
            phone: phone(c.phone.as_ref()),
            domain: c.email.as_ref().map(|e| e.domain().to_string()),
            external_id: None,
            codes: phone(c.mobile.as_ref()).into_iter().collect(),
            doc_type: Some(c.contact_type.clone()),
            status: None,
            enabled: c.active,
            tags: Vec::new(),
            assignee: None,
            country: None,
            city: None,
            industry_sector: None,
            industry_group: None,
            size_range: None,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}
