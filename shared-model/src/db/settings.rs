//! Connection settings of the read pool ([`super::reads`]), taken from the same `database.url`
//! the main pool uses and honoured the same way: `sslmode` as libpq defines it (`disable`,
//! `allow`/`prefer`, `require`, `verify-ca`, `verify-full`), `sslrootcert`, `sslcert`/`sslkey`,
//! `host` (a directory for a Unix socket), `port`, `dbname`, `user`, `password`,
//! `application_name`, `options`. A parameter neither pool understands stops the service at
//! start, naming it, rather than being ignored by one of them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::wire::{Host, Settings, TlsMode};

/// The read pool's connection settings for a `postgres://` URL.
pub(super) fn from_url(url: &str) -> anyhow::Result<Settings> {
    let role = super::runtime_role(url)?;
    let url = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("database.url: {e}"))?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| anyhow::anyhow!("database.url: {s:?} is not UTF-8 once decoded"))
    };
    let mut user = decode(&role)?;
    let mut password = url.password().map(decode).transpose()?;
    let mut host = url.host_str().map(str::to_string);
    let mut port = url.port().unwrap_or(5432);
    let db = url.path().trim_start_matches('/');
    let mut dbname = (!db.is_empty()).then(|| decode(db)).transpose()?;
    let mut application_name = "customer-platform".to_string();
    let mut options = None;
    let mut mode = "prefer".to_string();
    let (mut root, mut cert, mut key) = (None, None, None);
    for (k, v) in url.query_pairs() {
        let v = v.into_owned();
        match &*k {
            "sslmode" => mode = v,
            "sslrootcert" => root = Some(v),
            "sslcert" => cert = Some(v),
            "sslkey" => key = Some(v),
            "host" => host = Some(v),
            "port" => {
                port = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("database.url: port {v:?} is not a number"))?
            }
            "dbname" => dbname = Some(v),
            "user" => user = v,
            "password" => password = Some(v),
            "application_name" => application_name = v,
            "options" => options = Some(v),
            // The main pool's own setting; the read pool caches its few statements itself.
            "statement-cache-capacity" => {}
            other => anyhow::bail!("database.url: unsupported parameter {other:?}"),
        }
    }
    let host = match host {
        Some(h) if h.starts_with('/') => Host::Unix(PathBuf::from(h)),
        Some(h) => Host::Tcp(h.trim_start_matches('[').trim_end_matches(']').to_string()),
        None => Host::Tcp("localhost".into()),
    };
    let verify = match mode.as_str() {
        "disable" => None,
        // libpq: without a root certificate, `require` encrypts without checking who answers;
        // with one, it checks the chain like `verify-ca`.
        "allow" | "prefer" | "require" if root.is_none() => Some(Verify::Nothing),
        "allow" | "prefer" | "require" | "verify-ca" => Some(Verify::Chain),
        "verify-full" => Some(Verify::ChainAndName),
        other => anyhow::bail!("database.url: unknown sslmode {other:?}"),
    };
    let tls = match verify {
        None => TlsMode::Off,
        Some(v) => {
            let config = Arc::new(rustls_config(
                v,
                root.as_deref(),
                cert.as_deref(),
                key.as_deref(),
            )?);
            if matches!(mode.as_str(), "allow" | "prefer") {
                TlsMode::Prefer(config)
            } else {
                TlsMode::Require(config)
            }
        }
    };
    Ok(Settings {
        host,
        port,
        user,
        password,
        dbname,
        application_name,
        options,
        tls,
        connect_timeout: Duration::from_secs(10),
    })
}

enum Verify {
    Nothing,
    Chain,
    ChainAndName,
}

fn rustls_config(
    verify: Verify,
    root: Option<&str>,
    cert: Option<&str>,
    key: Option<&str>,
) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    match root {
        Some(path) => {
            for c in CertificateDer::pem_file_iter(path)
                .map_err(|e| anyhow::anyhow!("database.url sslrootcert {path}: {e}"))?
            {
                let c = c.map_err(|e| anyhow::anyhow!("database.url sslrootcert {path}: {e}"))?;
                roots.add(c)?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::ChainAndName => webpki,
        Verify::Chain => Arc::new(Relaxed {
            webpki,
            chain: true,
        }),
        Verify::Nothing => Arc::new(Relaxed {
            webpki,
            chain: false,
        }),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    Ok(match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow::anyhow!("database.url sslcert {cert}: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| anyhow::anyhow!("database.url sslkey {key}: {e}"))?;
            builder.with_client_auth_cert(chain, key)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => anyhow::bail!("database.url: sslcert and sslkey go together"),
    })
}

/// What libpq checks short of `verify-full`: with `chain`, that the certificate leads to a
/// trusted root but not whose name it bears (`verify-ca`); without, nothing (`require` with no
/// root certificate: encrypted, not authenticated). The handshake's signatures are checked
/// either way.
#[derive(Debug)]
struct Relaxed {
    webpki: Arc<WebPkiServerVerifier>,
    chain: bool,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_maps_onto_the_read_pool_settings() {
        let s = from_url("postgres://app%40x:p%2Fw@db.example:6432/cp?sslmode=disable").unwrap();
        assert!(matches!(s.tls, TlsMode::Off));
        assert_eq!(s.user, "app@x");
        assert_eq!(s.password.as_deref(), Some("p/w"));
        assert_eq!(s.dbname.as_deref(), Some("cp"));
        assert_eq!(s.host, Host::Tcp("db.example".into()));
        assert_eq!(s.port, 6432);
        assert_eq!(s.application_name, "customer-platform");

        let s = from_url("postgres://app@db/cp?sslmode=verify-full").unwrap();
        assert!(matches!(s.tls, TlsMode::Require(_)));
        let s = from_url("postgres://app@db/cp").unwrap();
        assert!(matches!(s.tls, TlsMode::Prefer(_)));
        let s = from_url("postgres://app@localhost/cp?host=/run/postgresql&application_name=x")
            .unwrap();
        assert_eq!(s.host, Host::Unix("/run/postgresql".into()));
        assert_eq!(s.port, 5432);
        assert_eq!(s.application_name, "x");
    }

    #[test]
    fn settings_the_read_pool_cannot_honour_stop_the_start() {
        for (url, names) in [
            ("postgres://a@db/cp?sslmode=sometimes", "sslmode"),
            ("postgres://a@db/cp?sslcompression=1", "sslcompression"),
            ("postgres://a@db/cp?sslcert=/x.pem", "sslkey"),
            ("postgres://db/cp", "runtime role"),
            (
                "postgres://a@db/cp?sslmode=verify-ca&sslrootcert=/nonexistent/root.pem",
                "sslrootcert",
            ),
        ] {
            let err = from_url(url).err().expect(url).to_string();
            assert!(err.contains(names), "{url}: {err}");
        }
    }
}
