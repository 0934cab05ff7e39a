//! The load generator's HTTP client: one HTTP/1.1 keep-alive connection per worker, written and
//! read by the worker itself, with each request's bytes prepared once. The generator shares the
//! machine's two cores with the service and the database, so every microsecond it spends is
//! taken from what it measures: pgbench's client costs about 5 µs of CPU per transaction, a
//! client on hyper's connection API (a connection task per worker, a channel hop per request)
//! about twice that, this one about as much as pgbench's.
//!
//! It speaks only what the services answer: a status line, headers, and a body framed by
//! `Content-Length` or chunked; `Connection: close` is honoured.

use anyhow::{Context, bail};
use bytes::{Buf, Bytes, BytesMut};
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A prepared request: its request line and the headers and body after `Host`, built once,
/// sent many times.
#[derive(Clone)]
pub struct Call {
    line: Bytes,
    rest: Bytes,
}

impl Call {
    pub fn get(path: impl Into<String>, token: &str) -> Call {
        Call::new("GET", &path.into(), token, None)
    }

    pub fn post_json(path: impl Into<String>, token: &str, body: &serde_json::Value) -> Call {
        Call::new("POST", &path.into(), token, Some(body.to_string()))
    }

    fn new(method: &str, path: &str, token: &str, body: Option<String>) -> Call {
        assert!(
            !path.contains([' ', '\r', '\n']) && !token.contains(['\r', '\n']),
            "a request line and a token are header-safe"
        );
        let mut rest = format!("Authorization: Bearer {token}\r\n");
        if let Some(body) = &body {
            rest.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            rest.push_str("\r\n");
        }
        Call {
            line: Bytes::from(format!("{method} {path} HTTP/1.1\r\n")),
            rest: Bytes::from(rest),
        }
    }
}

/// One connection to the service under test.
pub struct Conn {
    addr: String,
    host: Bytes,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    buf: BytesMut,
}

impl Conn {
    /// A connection to `base` (`http://host:port`), opened on first use.
    pub fn new(base: &str) -> Conn {
        let addr = base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Conn {
            host: Bytes::from(format!("Host: {addr}\r\n")),
            addr,
            stream: None,
            out: Vec::with_capacity(1024),
            buf: BytesMut::with_capacity(16 * 1024),
        }
    }

    /// Sends `call` and reads the whole answer. A broken connection is replaced on the next
    /// call.
    pub async fn send(&mut self, call: &Call) -> anyhow::Result<(StatusCode, Bytes)> {
        let result = self.exchange(call).await;
        match &result {
            Ok((_, _, keep_alive)) if *keep_alive => {}
            _ => self.stream = None,
        }
        result.map(|(status, body, _)| (status, body))
    }

    async fn exchange(&mut self, call: &Call) -> anyhow::Result<(StatusCode, Bytes, bool)> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().expect("connected above");
        self.out.clear();
        self.out.extend_from_slice(&call.line);
        self.out.extend_from_slice(&self.host);
        self.out.extend_from_slice(&call.rest);
        stream.write_all(&self.out).await?;
        let head = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            fill(stream, &mut self.buf).await?;
        };
        self.buf.advance(head.len);
        let body = match head.framing {
            Framing::Length(n) => {
                while self.buf.len() < n {
                    fill(stream, &mut self.buf).await?;
                }
                self.buf.split_to(n).freeze()
            }
            Framing::Chunked => {
                let mut body = BytesMut::new();
                loop {
                    let Some(eol) = find(&self.buf, b"\r\n") else {
                        fill(stream, &mut self.buf).await?;
                        continue;
                    };
                    let size = std::str::from_utf8(&self.buf[..eol])?;
                    let size = size.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size, 16).context("a chunk size")?;
                    // The chunk, its CRLF, and for the last one the (empty) trailer's CRLF.
                    let need = eol + 2 + size + 2;
                    while self.buf.len() < need {
                        fill(stream, &mut self.buf).await?;
                    }
                    self.buf.advance(eol + 2);
                    body.extend_from_slice(&self.buf.split_to(size));
                    self.buf.advance(2);
                    if size == 0 {
                        break body.freeze();
                    }
                }
            }
        };
        Ok((head.status, body, head.keep_alive))
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut BytesMut) -> anyhow::Result<()> {
    buf.reserve(8 * 1024);
    if stream.read_buf(buf).await? == 0 {
        bail!("the service closed the connection");
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

enum Framing {
    Length(usize),
    Chunked,
}

struct Head {
    status: StatusCode,
    /// Bytes of the status line and headers, blank line included.
    len: usize,
    framing: Framing,
    keep_alive: bool,
}

/// The response head at the start of `buf`, once it is all there.
fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            bail!("a response head over 64 KiB");
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).context("a response head in UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .with_context(|| format!("a status line: {status_line:?}"))?;
    let mut framing = Framing::Length(0);
    let mut keep_alive = true;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            bail!("a header line: {line:?}");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            framing = Framing::Length(value.parse().context("a content length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case("chunked") {
                bail!("transfer encoding {value:?}");
            }
            framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            keep_alive = false;
        }
    }
    Ok(Some(Head {
        status,
        len: end + 4,
        framing,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
                requests.push(String::from_utf8(req).unwrap());
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
        assert_eq!(
            requests[0],
            format!("GET /v1/x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer t0k\r\n\r\n")
        );
        assert!(requests[1].starts_with("POST /v1/y HTTP/1.1\r\n"));
        assert!(requests[1].contains("Content-Length: 7\r\n"));
    }
}
