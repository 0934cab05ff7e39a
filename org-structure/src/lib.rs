//! org-structure: departments, locations and contacts of customers and clients.
//!
//! Its resources arrive as folders beside this file, each with its routes, store, reactions
//! and jobs, and are listed in the definition below.
#![forbid(unsafe_code)]

use shared_model::service::{NoSettings, Service, ServiceSpec};
use sqlx::migrate::Migrator;

/// org-structure, as the kit runs it.
pub struct OrgStructure;

pub static SERVICE: ServiceSpec = ServiceSpec::of::<OrgStructure>();

impl Service for OrgStructure {
    const NAME: &'static str = "org-structure";
    const PORT: u16 = 8083;
    const MIGRATIONS: Migrator = sqlx::migrate!("./migrations");
    type Settings = NoSettings;
    type State = ();
}
