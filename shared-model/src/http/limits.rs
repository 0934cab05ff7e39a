//! Limits on a request's head: the target's length (414) and its header fields (431), answered
//! with a problem document before anything else reads the request.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::config::HttpConfig;
use crate::error::ApiError;

/// A service that lets a request through `check` before `inner`: `check` may answer it at
/// once (a refusal) or pass it on, changed or not.
#[derive(Clone)]
pub(super) struct Gate<S> {
    check: fn(&HttpConfig, Request) -> Result<Request, ApiError>,
    cfg: Arc<HttpConfig>,
    inner: S,
}

impl<S> tower::Service<Request> for Gate<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future =
        futures_util::future::Either<S::Future, std::future::Ready<Result<Response, S::Error>>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match (self.check)(&self.cfg, req) {
            Ok(req) => futures_util::future::Either::Left(self.inner.call(req)),
            Err(refused) => {
                futures_util::future::Either::Right(std::future::ready(Ok(refused.into_response())))
            }
        }
    }
}

/// The layer of a [`Gate`].
pub(super) fn gate<S>(
    cfg: Arc<HttpConfig>,
    check: fn(&HttpConfig, Request) -> Result<Request, ApiError>,
) -> impl tower::Layer<S, Service = Gate<S>> + Clone {
    tower::layer::layer_fn(move |inner| Gate {
        check,
        cfg: cfg.clone(),
        inner,
    })
}

/// The longest request target served (a longer one is 414).
const MAX_URI_BYTES: usize = 8 * 1024;
/// The most request header fields, and their total size, served (more is 431).
const MAX_HEADERS: usize = 100;
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// 414 for a request target over [`MAX_URI_BYTES`], 431 for headers over [`MAX_HEADERS`] or
/// [`MAX_HEADER_BYTES`], with a problem document. (The connection's own limits, which answer
/// without one, are set well above these: see [`serve`].)
pub(super) fn head_limits(_: &HttpConfig, req: Request) -> Result<Request, ApiError> {
    let uri = req.uri();
    let uri_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "URI_TOO_LONG",
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            format!(
                "the request has more than {MAX_HEADERS} header fields or {MAX_HEADER_BYTES} \
                 bytes of them"
            ),
        ));
    }
    Ok(req)
}
