//! search-sync: search index projections, search API, scoped search keys and event history.
//!
//! Its resources arrive as folders beside this file, each with its routes, store, reactions
//! and jobs, and are listed in the definition below.
#![forbid(unsafe_code)]

pub mod documents;
pub mod index;

use shared_model::bus::Subscription;
use shared_model::service::{App, NoSettings, Service, ServiceSpec};
use sqlx::migrate::Migrator;

/// search-sync, as the kit runs it.
pub struct SearchSync;

pub static SERVICE: ServiceSpec = ServiceSpec::of::<SearchSync>();

/// The routes' state.
pub type AppState = App<SearchSync>;

impl Service for SearchSync {
    const NAME: &'static str = "search-sync";
    const PORT: u16 = 8085;
    const MIGRATIONS: Migrator = sqlx::migrate!("./migrations");
    type Settings = NoSettings;
    type State = ();

    fn subscriptions(_: &AppState) -> Vec<Subscription> {
        documents::reactions::subscriptions()
    }
}
