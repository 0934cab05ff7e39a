//! What causes the events of one unit of work: the service that writes them, the actor, and
//! the trace they belong to.

use serde::Serialize;
use sqlx::PgConnection;

use crate::envelope::{CloudEvent, EventType};
use crate::ids::CustomerId;
use crate::telemetry::TraceContext;

/// The cause of a unit of work's events. A request's events continue its trace, a reaction's
/// continue the trace of the event it reacts to, and each run of a job starts a trace of its
/// own; reactions and jobs act as `system`.
#[derive(Clone, Debug)]
pub struct Cause {
    source: &'static str,
    actor: String,
    traceparent: Option<String>,
}

impl Cause {
    /// Events caused by a request of `actor` (the token's `sub`), in the request's trace.
    pub fn request(source: &'static str, actor: &str, trace: &TraceContext) -> Self {
        Self {
            source,
            actor: actor.to_string(),
            traceparent: Some(trace.child().header()),
        }
    }

    /// Events caused by reacting to `event`: a child of its trace (a new trace if it had none).
    pub fn reaction(source: &'static str, event: &CloudEvent) -> Self {
        Self {
            source,
            actor: "system".into(),
            traceparent: Some(TraceContext::reacting_to(event.traceparent.as_deref())),
        }
    }

    /// Events of one run of a background job: a trace of its own.
    pub fn job(source: &'static str) -> Self {
        Self {
            source,
            actor: "system".into(),
            traceparent: Some(TraceContext::root().header()),
        }
    }

    /// The token `sub` that caused the change, or `system`.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// An event about `subject` (an entity of `customer`) with `data`, its full state after
    /// the change.
    pub fn event(
        &self,
        kind: EventType,
        subject: impl ToString,
        customer: impl Into<Option<CustomerId>>,
        data: &impl Serialize,
    ) -> Result<CloudEvent, sqlx::Error> {
        CloudEvent::new(
            self.source,
            kind,
            subject,
            customer.into(),
            &self.actor,
            self.traceparent.clone(),
            data,
        )
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
    }

    /// Builds that event and writes it to the outbox in the caller's transaction.
    pub async fn emit(
        &self,
        conn: &mut PgConnection,
        kind: EventType,
        subject: impl ToString,
        customer: impl Into<Option<CustomerId>>,
        data: &impl Serialize,
    ) -> Result<(), sqlx::Error> {
        let event = self.event(kind, subject, customer, data)?;
        super::write(conn, std::slice::from_ref(&event)).await
    }
}
