//! The HTTP server loop: accepts connections up to a cap, serves HTTP/1.1 and HTTP/2 on each
//! with hyper, bounds how long a client may take to send its request head, and shuts down
//! gracefully (idle keep-alive connections are closed at once, in-flight requests finish and
//! their connections close after the response).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::HttpConfig;

/// Serves `app` on `listener` until `shutdown`, then drains in-flight requests for at most
/// `http.shutdown_grace_ms`.
///
/// - At most `http.max_connections` connections are open at once; past that, new ones wait in
///   the listen backlog until one closes.
/// - A client that has not sent its whole request head within `http.header_read_timeout_ms` of
///   connecting (or of its previous response on a keep-alive connection) is disconnected.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    cfg: &HttpConfig,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The connection's own limits, which answer 414/431 without a problem document and close
    // the connection, lie well above the router's (see `head_limits` in the parent module):
    // request targets over 64 KiB, heads over about 400 KiB, more than 500 header fields.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(cfg.header_read_timeout_ms))
        .max_headers(500);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)));
    let builder = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(cfg.max_connections));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p?,
            _ = shutdown.cancelled() => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Without TCP_NODELAY a response written in pieces (a streamed body) waits for the
        // client's delayed acknowledgement of the previous piece.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
        let service = TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let grace = Duration::from_millis(cfg.shutdown_grace_ms);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::warn!("shutdown grace period over; dropping remaining connections");
        }
    }
    Ok(())
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutdown requested; draining");
        token.cancel();
    });
}
