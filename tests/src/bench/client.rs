//! The load generator's HTTP client: one HTTP/1.1 keep-alive connection per worker through
//! hyper's connection API, with request bodies and headers prepared once. The generator shares
//! the machine's two cores with the service and the database, so every microsecond it spends
//! is taken from what it measures; a pooled general-purpose client costs several times more
//! per request.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A prepared request: method, path and body built once, sent many times.
#[derive(Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub token: HeaderValue,
    pub body: Option<Bytes>,
}

impl Call {
    pub fn get(path: impl Into<String>, token: &str) -> Call {
        Call {
            method: Method::GET,
            path: path.into(),
            token: bearer(token),
            body: None,
        }
    }

    pub fn post_json(path: impl Into<String>, token: &str, body: &serde_json::Value) -> Call {
        Call {
            method: Method::POST,
            path: path.into(),
            token: bearer(token),
            body: Some(Bytes::from(body.to_string())),
        }
    }
}

/// The `Authorization` value of a bearer token.
pub fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).expect("a token is header-safe")
}

/// One connection to the service under test.
pub struct Conn {
    addr: String,
    host: HeaderValue,
    tx: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection to `base` (`http://host:port`), opened on first use.
    pub fn new(base: &str) -> Conn {
        let addr = base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Conn {
            host: HeaderValue::from_str(&addr).expect("host:port is header-safe"),
            addr,
            tx: None,
        }
    }

    async fn sender(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if self.tx.as_ref().is_none_or(|tx| tx.is_closed()) {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            self.tx = Some(tx);
        }
        let tx = self.tx.as_mut().expect("connected above");
        tx.ready().await?;
        Ok(tx)
    }

    /// Sends `call` and reads the whole answer. A broken connection is replaced on the next
    /// call.
    pub async fn send(&mut self, call: &Call) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(call.method.clone())
            .uri(call.path.as_str())
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, call.token.clone());
        if call.body.is_some() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let req = req.body(Full::new(call.body.clone().unwrap_or_default()))?;
        let result = async {
            let res = self.sender().await?.send_request(req).await?;
            let status = res.status();
            let body = res.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, body))
        }
        .await;
        if result.is_err() {
            self.tx = None;
        }
        result
    }
}
