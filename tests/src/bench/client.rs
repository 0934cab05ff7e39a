//! The load generator's HTTP client: one HTTP/1.1 keep-alive connection per worker, on hyper's
//! client connection API (the connection runs as a task on the worker's runtime).
//!
//! A client of the generator's own (each request's bytes prepared once, written and read by
//! the worker itself) was measured against this one in one run and won 4% on get-customer and
//! nothing on verify-key (docs/performance.md), so hyper's is the one used.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A prepared request, built once, sent many times.
#[derive(Clone)]
pub struct Call {
    method: Method,
    path: String,
    authorization: HeaderValue,
    body: Option<Bytes>,
}

impl Call {
    pub fn get(path: impl Into<String>, token: &str) -> Call {
        Call::new(Method::GET, path.into(), token, None)
    }

    pub fn post_json(path: impl Into<String>, token: &str, body: &serde_json::Value) -> Call {
        Call::new(Method::POST, path.into(), token, Some(body.to_string()))
    }

    fn new(method: Method, path: String, token: &str, body: Option<String>) -> Call {
        Call {
            method,
            path,
            authorization: format!("Bearer {token}")
                .parse()
                .expect("a header-safe token"),
            body: body.map(Bytes::from),
        }
    }
}

/// One connection to the service under test.
pub struct Conn {
    addr: String,
    host: HeaderValue,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection to `base` (`http://host:port`), opened on first use.
    pub fn new(base: &str) -> Conn {
        let addr = base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Conn {
            host: addr.parse().expect("a header-safe host"),
            addr,
            sender: None,
        }
    }

    /// Sends `call` and reads the whole answer. A broken connection is replaced on the next
    /// call.
    pub async fn send(&mut self, call: &Call) -> anyhow::Result<(StatusCode, Bytes)> {
        let result = self.exchange(call).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, call: &Call) -> anyhow::Result<(StatusCode, Bytes)> {
        // A connection the service closed (`Connection: close`) may not know it yet: one that
        // is not ready is replaced.
        if let Some(s) = &mut self.sender
            && s.ready().await.is_err()
        {
            self.sender = None;
        }
        let sender = match &mut self.sender {
            Some(s) => s,
            None => {
                let stream = TcpStream::connect(&self.addr).await?;
                stream.set_nodelay(true)?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection);
                self.sender.insert(sender)
            }
        };
        let mut req = hyper::Request::builder()
            .method(call.method.clone())
            .uri(&call.path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, call.authorization.clone());
        if call.body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(call.body.clone().unwrap_or_default()))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[tokio::test]
    async fn reads_length_and_chunked_answers_over_one_connection_and_reconnects_after_close() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let answers: [&[u8]; 3] = [
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
                b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            ];
            let mut requests = Vec::new();
            let (mut s, _) = listener.accept().await.unwrap();
            for answer in answers {
                let mut req = Vec::new();
                while find(&req, b"\r\n\r\n").is_none() {
                    let mut b = [0u8; 1024];
                    let n = s.read(&mut b).await.unwrap();
                    req.extend_from_slice(&b[..n]);
                }
                requests.push(String::from_utf8(req).unwrap().to_ascii_lowercase());
                // Answers arrive in pieces.
                for piece in answer.chunks(7) {
                    s.write_all(piece).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
            drop(s);
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
            requests
        });
        let mut conn = Conn::new(&format!("http://{addr}"));
        let get = Call::get("/v1/x", "t0k");
        assert_eq!(
            conn.send(&get).await.unwrap(),
            (StatusCode::OK, Bytes::from_static(b"hello"))
        );
        let post = Call::post_json("/v1/y", "t0k", &serde_json::json!({"a": 1}));
        assert_eq!(
            conn.send(&post).await.unwrap(),
            (StatusCode::CREATED, Bytes::from_static(b"abcde"))
        );
        assert_eq!(conn.send(&get).await.unwrap().0, StatusCode::NOT_FOUND);
        assert_eq!(
            conn.send(&get).await.unwrap(),
            (StatusCode::OK, Bytes::from_static(b"ok"))
        );
        let requests = server.await.unwrap();
        assert!(requests[0].starts_with("get /v1/x http/1.1\r\n"));
        for header in [
            format!("host: {addr}\r\n"),
            "authorization: bearer t0k\r\n".into(),
        ] {
            assert!(requests[0].contains(&header), "{header}");
        }
        assert!(requests[1].starts_with("post /v1/y http/1.1\r\n"));
        assert!(requests[1].contains("content-type: application/json\r\n"));
        assert!(requests[1].contains("content-length: 7\r\n"));
    }
}
