//! gdpr-worker: data-subject requests (access, erasure, rectification, portability) and their orchestration.
//!
//! Its resources arrive as folders beside this file, each with its routes, store, reactions
//! and jobs, and are listed in the definition below.
#![forbid(unsafe_code)]

use shared_model::service::{NoSettings, Service, ServiceSpec};
use sqlx::migrate::Migrator;

/// gdpr-worker, as the kit runs it.
pub struct GdprWorker;

pub static SERVICE: ServiceSpec = ServiceSpec::of::<GdprWorker>();

impl Service for GdprWorker {
    const NAME: &'static str = "gdpr-worker";
    const PORT: u16 = 8084;
    const MIGRATIONS: Migrator = sqlx::migrate!("./migrations");
    type Settings = NoSettings;
    type State = ();
}
