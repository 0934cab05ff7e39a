//! Operations served at two levels of ownership, written once.
//!
//! org-structure's resources belong to a customer or to one of its clients, with the same
//! operations at `/v1/customers/{customerId}/locations` and
//! `/v1/customers/{customerId}/clients/{clientId}/locations`. [`nested`] takes the operations
//! as declared for the first level and serves them at the second too: the same handler (which
//! reads the path parameters by name, so it sees `clientId` when there is one), and in the
//! document an operation per level, the second with the extra parameter and its own
//! operation id.

use utoipa::openapi::path::{Operation, Parameter, PathItem};
use utoipa_axum::router::UtoipaMethodRouter;

/// Where the second level sits: every path beginning with `prefix` is also served with
/// `segment` inserted after it (and `parameter` documented after the prefix's own path
/// parameters); the copies' operation ids end in `id_suffix`.
pub struct Level {
    pub prefix: &'static str,
    pub segment: &'static str,
    pub parameter: fn() -> Parameter,
    pub id_suffix: &'static str,
}

/// `ops` at their own paths and, for those under `level.prefix`, at the nested ones.
pub fn nested<S>(ops: UtoipaMethodRouter<S>, level: &Level) -> UtoipaMethodRouter<S> {
    let (schemas, mut paths, router) = ops;
    let prefix_params = level.prefix.matches('{').count();
    let copies: Vec<(String, PathItem)> = paths
        .paths
        .iter()
        .filter_map(|(path, item)| {
            let rest = path.strip_prefix(level.prefix)?;
            let mut item = item.clone();
            for op in operations(&mut item) {
                op.operation_id = op
                    .operation_id
                    .take()
                    .map(|id| format!("{id}{}", level.id_suffix));
                let params = op.parameters.get_or_insert_with(Vec::new);
                let at = prefix_params.min(params.len());
                params.insert(at, (level.parameter)().into());
            }
            Some((format!("{}{}{rest}", level.prefix, level.segment), item))
        })
        .collect();
    paths.paths.extend(copies);
    (schemas, paths, router)
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use axum::extract::Path;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;

    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ThingPath {
        customer_id: String,
        client_id: Option<String>,
        thing_id: String,
    }

    /// Get a thing.
    #[utoipa::path(get, path = "/v1/customers/{customerId}/things/{thingId}",
        params(("customerId" = String, Path), ("thingId" = String, Path)),
        responses((status = 200, body = String)))]
    async fn get_thing(Path(p): Path<ThingPath>) -> String {
        format!("{} {:?} {}", p.customer_id, p.client_id, p.thing_id)
    }

    const CLIENTS: Level = Level {
        prefix: "/v1/customers/{customerId}",
        segment: "/clients/{clientId}",
        parameter: || {
            ParameterBuilder::new()
                .name("clientId")
                .parameter_in(ParameterIn::Path)
                .required(utoipa::openapi::Required::True)
                .build()
        },
        id_suffix: "_of_client",
    };

    #[tokio::test]
    async fn an_operation_is_served_and_documented_at_both_levels() {
        use tower::ServiceExt;
        let (router, doc) = OpenApiRouter::<()>::new()
            .routes(nested(routes!(get_thing), &CLIENTS))
            .split_for_parts();
        let top = &doc.paths.paths["/v1/customers/{customerId}/things/{thingId}"];
        let nested =
            &doc.paths.paths["/v1/customers/{customerId}/clients/{clientId}/things/{thingId}"];
        let (top, nested) = (top.get.as_ref().unwrap(), nested.get.as_ref().unwrap());
        assert_eq!(top.operation_id.as_deref(), Some("get_thing"));
        assert_eq!(nested.operation_id.as_deref(), Some("get_thing_of_client"));
        let names = |op: &Operation| -> Vec<String> {
            op.parameters
                .iter()
                .flatten()
                .map(|p| match p {
                    utoipa::openapi::RefOr::T(p) => p.name.clone(),
                    utoipa::openapi::RefOr::Ref(r) => r.ref_location.clone(),
                })
                .collect()
        };
        assert_eq!(names(top), ["customerId", "thingId"]);
        assert_eq!(names(nested), ["customerId", "clientId", "thingId"]);

        for (uri, answer) in [
            ("/v1/customers/c/things/t", "c None t"),
            ("/v1/customers/c/clients/k/things/t", "c Some(\"k\") t"),
        ] {
            let res = router
                .clone()
                .oneshot(
                    axum::http::Request::get(uri)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
            assert_eq!(body, answer.as_bytes());
        }
    }
}
