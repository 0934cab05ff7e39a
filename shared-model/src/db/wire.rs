//! A PostgreSQL connection that speaks just what the read pool needs: start-up (TLS, password,
//! MD5 and SCRAM-SHA-256 authentication), preparing a statement once, and running a scope
//! statement and a query as one pipeline ending in a single Sync — one write, one implicit
//! transaction, one ReadyForQuery. Message encoding and decoding are postgres-protocol's; value
//! encoding and decoding are postgres-types'.
//!
//! A connection that saw an I/O or protocol error is marked broken and never used again.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{self, ScramSha256};
use postgres_protocol::message::backend::{DataRowBody, ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use postgres_types::{FromSql, ToSql, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::reads::ReadError;

/// Where and how to connect (built from `database.url` by [`super::settings::from_url`]).
pub(super) struct Settings {
    pub host: Host,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: Option<String>,
    pub application_name: String,
    pub options: Option<String>,
    pub tls: TlsMode,
    pub connect_timeout: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Host {
    Tcp(String),
    /// A directory holding the server's socket.
    Unix(PathBuf),
}

pub(super) enum TlsMode {
    Off,
    /// Use TLS when the server offers it.
    Prefer(Arc<rustls::ClientConfig>),
    /// Refuse a server that does not offer TLS.
    Require(Arc<rustls::ClientConfig>),
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A column of a prepared statement's result.
pub struct Column {
    name: String,
    ty: Type,
}

struct Prepared {
    name: String,
    params: Vec<Type>,
    columns: Arc<[Column]>,
}

/// One row of a read. Values are decoded on access with postgres-types' `FromSql`.
pub struct ReadRow {
    columns: Arc<[Column]>,
    body: DataRowBody,
    ranges: Vec<Option<Range<usize>>>,
    /// Where [`ReadRow::try_get`] starts looking: after the column it found last, so a caller
    /// that reads columns in their order finds each at the first comparison.
    next: AtomicUsize,
}

impl std::fmt::Debug for ReadRow {
    /// Column names and raw sizes; values are not decoded here.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_map();
        for (c, r) in self.columns.iter().zip(&self.ranges) {
            list.entry(&c.name, &r.as_ref().map(|r| format!("{} bytes", r.len())));
        }
        list.finish()
    }
}

impl ReadRow {
    /// The value of column `name`.
    pub fn try_get<'a, T: FromSql<'a>>(&'a self, name: &str) -> Result<T, ReadError> {
        let n = self.columns.len();
        let from = self.next.load(Ordering::Relaxed);
        let idx = (0..n)
            .map(|i| (from + i) % n)
            .find(|&i| self.columns[i].name == name)
            .ok_or_else(|| ReadError::Decode(format!("no column {name:?}")))?;
        self.next.store(idx + 1, Ordering::Relaxed);
        self.try_get_at(idx)
    }

    /// The value of the column at `idx`.
    pub fn try_get_at<'a, T: FromSql<'a>>(&'a self, idx: usize) -> Result<T, ReadError> {
        let column = self
            .columns
            .get(idx)
            .ok_or_else(|| ReadError::Decode(format!("no column {idx}")))?;
        if !T::accepts(&column.ty) {
            return Err(ReadError::Decode(format!(
                "column {:?} of type {} cannot be read as {}",
                column.name,
                column.ty,
                std::any::type_name::<T>()
            )));
        }
        let raw = self.ranges[idx].clone().map(|r| &self.body.buffer()[r]);
        T::from_sql_nullable(&column.ty, raw)
            .map_err(|e| ReadError::Decode(format!("column {:?}: {e}", column.name)))
    }

    /// The value of the column at `idx`; panics where `try_get_at` fails (tests).
    pub fn get<'a, T: FromSql<'a>>(&'a self, idx: usize) -> T {
        self.try_get_at(idx).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

/// An error the server reported.
#[derive(Debug)]
pub struct DbError {
    pub code: String,
    pub message: String,
    /// The constraint a violation names, if any.
    pub constraint: Option<String>,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)
    }
}

fn db_error(body: &ErrorResponseBody) -> DbError {
    let (mut code, mut message, mut constraint) = (String::new(), String::new(), None);
    let mut fields = body.fields();
    while let Ok(Some(f)) = fields.next() {
        let value = || String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'C' => code = value(),
            b'M' => message = value(),
            b'n' => constraint = Some(value()),
            _ => {}
        }
    }
    DbError {
        code,
        message,
        constraint,
    }
}

fn protocol(what: impl Into<String>) -> ReadError {
    ReadError::Protocol(what.into())
}

pub(super) struct Conn {
    io: Box<dyn Io>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    prepared: HashMap<&'static str, Arc<Prepared>>,
    next_id: u32,
    broken: bool,
}

impl Conn {
    pub(super) async fn connect(s: &Settings) -> Result<Conn, ReadError> {
        let io = tokio::time::timeout(s.connect_timeout, open(s))
            .await
            .map_err(|_| protocol("connecting timed out"))??;
        let mut conn = Conn {
            io,
            rbuf: BytesMut::with_capacity(8 * 1024),
            wbuf: BytesMut::with_capacity(1024),
            prepared: HashMap::new(),
            next_id: 0,
            broken: false,
        };
        conn.start(s).await.inspect_err(|_| conn.broken = true)?;
        Ok(conn)
    }

    pub(super) fn is_broken(&self) -> bool {
        self.broken
    }

    async fn start(&mut self, s: &Settings) -> Result<(), ReadError> {
        let mut params = vec![
            ("user", s.user.as_str()),
            ("application_name", s.application_name.as_str()),
            ("client_encoding", "UTF8"),
        ];
        if let Some(db) = &s.dbname {
            params.push(("database", db));
        }
        if let Some(o) = &s.options {
            params.push(("options", o));
        }
        frontend::startup_message(params, &mut self.wbuf)?;
        self.send().await?;
        let password = || {
            s.password
                .as_deref()
                .ok_or_else(|| protocol("the server asks for a password and database.url has none"))
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            match self.receive().await? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?.as_bytes(), &mut self.wbuf)?;
                    self.send().await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = postgres_protocol::authentication::md5_hash(
                        s.user.as_bytes(),
                        password()?.as_bytes(),
                        body.salt(),
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.wbuf)?;
                    self.send().await?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut offered = body.mechanisms();
                    let mut scram_offered = false;
                    while let Some(m) = offered.next()? {
                        scram_offered |= m == sasl::SCRAM_SHA_256;
                    }
                    if !scram_offered {
                        return Err(protocol(
                            "the server offers no SASL mechanism this client has",
                        ));
                    }
                    let s256 = ScramSha256::new(
                        password()?.as_bytes(),
                        sasl::ChannelBinding::unsupported(),
                    );
                    frontend::sasl_initial_response(
                        sasl::SCRAM_SHA_256,
                        s256.message(),
                        &mut self.wbuf,
                    )?;
                    scram = Some(s256);
                    self.send().await?;
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s256 = scram
                        .as_mut()
                        .ok_or_else(|| protocol("SASL continue before SASL start"))?;
                    s256.update(body.data())?;
                    frontend::sasl_response(s256.message(), &mut self.wbuf)?;
                    self.send().await?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    scram
                        .as_mut()
                        .ok_or_else(|| protocol("SASL final before SASL start"))?
                        .finish(body.data())?;
                }
                Message::ErrorResponse(body) => return Err(ReadError::Db(db_error(&body))),
                Message::ReadyForQuery(_) => return Ok(()),
                Message::ParameterStatus(_)
                | Message::BackendKeyData(_)
                | Message::NoticeResponse(_) => {}
                _ => return Err(protocol("unsupported authentication method")),
            }
        }
    }

    /// `sql` prepared on this connection (once; cached by its text).
    async fn prepared(&mut self, sql: &'static str) -> Result<Arc<Prepared>, ReadError> {
        if let Some(p) = self.prepared.get(sql) {
            return Ok(p.clone());
        }
        self.next_id += 1;
        let name = format!("r{}", self.next_id);
        // Whatever a failed bind left behind is not sent.
        self.wbuf.clear();
        frontend::parse(&name, sql, [], &mut self.wbuf)?;
        frontend::describe(b'S', &name, &mut self.wbuf)?;
        frontend::sync(&mut self.wbuf);
        self.send().await?;
        let (mut params, mut columns, mut error) = (Vec::new(), Vec::new(), None);
        loop {
            match self.receive().await? {
                Message::ParseComplete | Message::NoData => {}
                Message::ParameterDescription(body) => {
                    let mut oids = body.parameters();
                    while let Some(oid) = oids.next()? {
                        params.push(type_of(oid)?);
                    }
                }
                Message::RowDescription(body) => {
                    let mut fields = body.fields();
                    while let Some(f) = fields.next()? {
                        columns.push(Column {
                            name: f.name().to_string(),
                            ty: type_of(f.type_oid())?,
                        });
                    }
                }
                Message::ErrorResponse(body) => error = Some(db_error(&body)),
                Message::ReadyForQuery(_) => break,
                Message::NoticeResponse(_)
                | Message::ParameterStatus(_)
                | Message::NotificationResponse(_) => {}
                _ => return Err(protocol("unexpected message while preparing")),
            }
        }
        if let Some(e) = error {
            return Err(ReadError::Db(e));
        }
        let p = Arc::new(Prepared {
            name,
            params,
            columns: columns.into(),
        });
        self.prepared.insert(sql, p.clone());
        Ok(p)
    }

    /// Runs `first` and then `sql` as one implicit transaction: both bound and executed, then a
    /// single Sync. Returns the rows of `sql`; the rows of `first` are not kept.
    pub(super) async fn pipeline(
        &mut self,
        first: (&'static str, &[&(dyn ToSql + Sync)]),
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<ReadRow>, ReadError> {
        let result = self.try_pipeline(first, sql, params).await;
        if matches!(result, Err(ReadError::Io(_) | ReadError::Protocol(_))) {
            self.broken = true;
        }
        result
    }

    async fn try_pipeline(
        &mut self,
        first: (&'static str, &[&(dyn ToSql + Sync)]),
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<ReadRow>, ReadError> {
        let scope = self.prepared(first.0).await?;
        let query = self.prepared(sql).await?;
        self.wbuf.clear();
        bind(&scope, first.1, &mut self.wbuf)?;
        frontend::execute("", 0, &mut self.wbuf)?;
        bind(&query, params, &mut self.wbuf)?;
        frontend::execute("", 0, &mut self.wbuf)?;
        frontend::sync(&mut self.wbuf);
        self.send().await?;
        let (mut completed, mut rows, mut error) = (0, Vec::new(), None);
        loop {
            match self.receive().await? {
                Message::BindComplete | Message::EmptyQueryResponse => {}
                Message::CommandComplete(_) => completed += 1,
                Message::DataRow(body) if completed == 1 => {
                    let ranges = body
                        .ranges()
                        .collect::<Vec<_>>()
                        .map_err(|e| protocol(e.to_string()))?;
                    if ranges.len() != query.columns.len() {
                        return Err(protocol("a row's width differs from its description"));
                    }
                    rows.push(ReadRow {
                        columns: query.columns.clone(),
                        body,
                        ranges,
                        next: AtomicUsize::new(0),
                    });
                }
                Message::DataRow(_) => {}
                Message::ErrorResponse(body) => error = Some(db_error(&body)),
                Message::ReadyForQuery(_) => break,
                Message::NoticeResponse(_)
                | Message::ParameterStatus(_)
                | Message::NotificationResponse(_) => {}
                _ => return Err(protocol("unexpected message in a read")),
            }
        }
        if let Some(e) = error {
            // A schema change can invalidate a prepared statement ("cached plan must not change
            // result type"): this connection's statements are not used again.
            if e.code == "0A000" || e.code == "26000" {
                self.broken = true;
            }
            return Err(ReadError::Db(e));
        }
        Ok(rows)
    }

    async fn send(&mut self) -> Result<(), ReadError> {
        let r = self.io.write_all(&self.wbuf).await;
        self.wbuf.clear();
        r?;
        self.io.flush().await?;
        Ok(())
    }

    async fn receive(&mut self) -> Result<Message, ReadError> {
        loop {
            if let Some(m) = Message::parse(&mut self.rbuf)? {
                return Ok(m);
            }
            self.rbuf.reserve(4096);
            if self.io.read_buf(&mut self.rbuf).await? == 0 {
                return Err(protocol("the server closed the connection"));
            }
        }
    }
}

fn type_of(oid: u32) -> Result<Type, ReadError> {
    Type::from_oid(oid).ok_or_else(|| protocol(format!("unsupported type oid {oid}")))
}

fn bind(p: &Prepared, params: &[&(dyn ToSql + Sync)], buf: &mut BytesMut) -> Result<(), ReadError> {
    if params.len() != p.params.len() {
        return Err(ReadError::Decode(format!(
            "the statement takes {} parameters, {} given",
            p.params.len(),
            params.len()
        )));
    }
    let values = params.iter().zip(&p.params);
    frontend::bind(
        "",
        &p.name,
        std::iter::repeat_n(1, params.len()),
        values,
        |(v, ty), buf| {
            Ok(match v.to_sql_checked(ty, buf)? {
                postgres_types::IsNull::Yes => postgres_protocol::IsNull::Yes,
                postgres_types::IsNull::No => postgres_protocol::IsNull::No,
            })
        },
        [1],
        buf,
    )
    .map_err(|e| match e {
        frontend::BindError::Conversion(e) => ReadError::Decode(format!("a parameter: {e}")),
        frontend::BindError::Serialization(e) => ReadError::Io(e),
    })
}

async fn open(s: &Settings) -> Result<Box<dyn Io>, ReadError> {
    let host = match &s.host {
        Host::Unix(dir) => {
            let path = dir.join(format!(".s.PGSQL.{}", s.port));
            return Ok(Box::new(tokio::net::UnixStream::connect(path).await?));
        }
        Host::Tcp(h) => h,
    };
    let mut tcp = tokio::net::TcpStream::connect((host.as_str(), s.port)).await?;
    tcp.set_nodelay(true)?;
    let (tls, required) = match &s.tls {
        TlsMode::Off => return Ok(Box::new(tcp)),
        TlsMode::Prefer(c) => (c.clone(), false),
        TlsMode::Require(c) => (c.clone(), true),
    };
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    tcp.write_all(&buf).await?;
    match tcp.read_u8().await? {
        b'S' => {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| protocol(format!("TLS server name {host:?}: {e}")))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await?;
            Ok(Box::new(stream))
        }
        b'N' if !required => Ok(Box::new(tcp)),
        b'N' => Err(protocol(
            "the server does not offer TLS, which sslmode requires",
        )),
        _ => Err(protocol("unexpected answer to the TLS request")),
    }
}
