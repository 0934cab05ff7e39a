//! What every service's OpenAPI document shares: the bearer scheme, the operational routes,
//! the problem responses any operation can answer, and reusable problem sets.

use utoipa::openapi::path::Operation;

/// Adds the bearer-token security scheme and the operational routes to a service's document,
/// and to every operation the problems the HTTP stack itself can answer (see
/// [`stack_problems`]).
pub struct KitDoc;

/// Which operations can get a problem of the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Applies {
    /// Every operation.
    All,
    /// Operations with a request body.
    Body,
    /// Operations with parameters or a request body.
    Input,
}

/// The problems the HTTP stack answers before or around any handler, by what an operation
/// takes: (status, description, which operations).
const STACK_PROBLEMS: &[(&str, &str, Applies)] = &[
    (
        "400",
        "MALFORMED_JSON: the body is not JSON; BODY_UNREADABLE: it could not be read",
        Applies::Body,
    ),
    (
        "408",
        "REQUEST_TIMEOUT: the body did not arrive within http.body_read_timeout_ms",
        Applies::Body,
    ),
    (
        "413",
        "PAYLOAD_TOO_LARGE: the body is over http.body_limit_bytes",
        Applies::Body,
    ),
    (
        "414",
        "URI_TOO_LONG: the request target is over 8 KiB",
        Applies::All,
    ),
    (
        "415",
        "UNSUPPORTED_MEDIA_TYPE: the body is not application/json",
        Applies::Body,
    ),
    (
        "422",
        "VALIDATION_FAILED: a path id is not a UUID, a query parameter or body field breaks its \
         rule (a body must be one JSON object; no text may hold U+0000)",
        Applies::Input,
    ),
    (
        "431",
        "HEADERS_TOO_LARGE: more than 100 header fields or 64 KiB of them",
        Applies::All,
    ),
    (
        "503",
        "UNAVAILABLE: the database is unreachable or busy, or the request took longer than \
         http.request_timeout_ms; retry after Retry-After seconds",
        Applies::All,
    ),
];

/// Adds [`STACK_PROBLEMS`] to an operation, keeping a response it documents itself.
fn stack_problems(op: &mut Operation) {
    let body = op.request_body.is_some();
    let input = body || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    for (status, description, applies) in STACK_PROBLEMS {
        let applies = match applies {
            Applies::All => true,
            Applies::Body => body,
            Applies::Input => input,
        };
        if !applies {
            continue;
        }
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| problems::problem(description));
    }
}

impl utoipa::Modify for KitDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        use utoipa::openapi::{ContentBuilder, ResponseBuilder};
        openapi.merge(<super::DeadLetterDoc as utoipa::OpenApi>::openapi());
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.options,
            ]
            .into_iter()
            .flatten()
            {
                stack_problems(op);
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        let content = || ContentBuilder::new().build();
        for (path, summary, ok, media) in [
            (
                "/health/live",
                "Liveness: the process serves requests",
                "alive",
                "application/json",
            ),
            (
                "/health/ready",
                "Readiness: database and broker reachable (503 otherwise, within a second)",
                "ready",
                "application/json",
            ),
            (
                "/metrics",
                "Prometheus metrics (text exposition format)",
                "metrics",
                "text/plain",
            ),
        ] {
            let mut op = OperationBuilder::new()
                .summary(Some(summary))
                .tag("operations")
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description(ok)
                        .content(media, content())
                        .build(),
                )
                .build();
            if path == "/health/ready" {
                op.responses.responses.insert(
                    "503".into(),
                    ResponseBuilder::new()
                        .description("not ready: names what is down")
                        .content("application/json", content())
                        .build()
                        .into(),
                );
            }
            stack_problems(&mut op);
            openapi
                .paths
                .paths
                .insert(path.to_string(), PathItem::new(HttpMethod::Get, op));
        }
    }
}

/// Reusable OpenAPI error responses (RFC 9457 problem details referencing the `Problem`
/// schema) for `#[utoipa::path(responses(...))]`, beside an operation's own responses.
pub mod problems {
    use std::collections::BTreeMap;

    use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

    pub(super) fn problem(description: &str) -> RefOr<Response> {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
            .into()
    }

    macro_rules! response_set {
        ($(#[$meta:meta])* $name:ident { $($status:literal => $description:literal),+ $(,)? }) => {
            $(#[$meta])*
            pub struct $name;

            impl utoipa::IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    BTreeMap::from([$(($status.to_string(), problem($description))),+])
                }
            }
        };
    }

    response_set!(
        /// 401 and 403.
        AuthErrors {
            "401" => "NOT_AUTHORIZED: no valid bearer token",
            "403" => "FORBIDDEN: the token lacks the permission",
        }
    );
    response_set!(
        /// What any tenant-scoped operation can answer: 400 KEY_MISMATCH, 401, 403, 404.
        TenantErrors {
            "400" => "KEY_MISMATCH: the path names another customer or client than the token",
            "401" => "NOT_AUTHORIZED: no valid bearer token",
            "403" => "FORBIDDEN: the token lacks the permission",
            "404" => "NOT_FOUND: no such entity visible to the caller",
        }
    );
    response_set!(
        /// 422 VALIDATION_FAILED, naming each field and the rule it broke.
        Invalid {
            "422" => "VALIDATION_FAILED: the fields and the rules they broke",
        }
    );
    response_set!(
        /// 412 PRECONDITION_FAILED: `If-Match` names another version.
        Stale {
            "412" => "PRECONDITION_FAILED: If-Match names another version",
        }
    );
}
