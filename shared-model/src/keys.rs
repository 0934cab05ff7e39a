//! Secret key format, generation and hashing, for every kind of key the platform issues
//! (partition-keys' API keys `cpk_`, search-sync's search keys `csk_`).
//!
//! A key reads `<mark><label>_<body><check>`:
//! - `<mark>` names the kind of key (`cpk_`: easy to scan for in leaked text);
//! - `<label>` is a short label (`a-z 0-9`, at most 16: an API key's partition environment);
//! - `<body>` is 256 random bits in base62 (43 characters);
//! - `<check>` is 6 base62 characters of the SHA-256 of everything before it, so a mistyped
//!   or truncated key is refused without touching the database.
//!
//! Only HMAC-SHA256(pepper, key) is stored, with the public prefix (`cpk_prod_` plus the first
//! 6 body characters) for display and lookup. Lookup is by that keyed hash, so the database never holds
//! anything from which the key could be recovered without the server-side pepper.

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;
/// Characters of the body shown in the public prefix.
const PREFIX_BODY: usize = 6;

/// Base62 digits of a number of at most 32 big-endian bytes: up to 43 of them, written
/// right-aligned into `buf`, whose unwritten start stays `0`s; returns where they begin.
fn base62_digits(bytes: &[u8], buf: &mut [u8; 43]) -> usize {
    let mut num = [0u8; 32];
    let num = &mut num[..bytes.len()];
    num.copy_from_slice(bytes);
    buf.fill(b'0');
    let mut at = buf.len();
    while num.iter().any(|b| *b != 0) {
        let mut rem = 0u32;
        for b in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 62) as u8;
            rem = cur % 62;
        }
        at -= 1;
        buf[at] = ALPHABET[rem as usize];
    }
    at
}

/// `bytes` (at most 32) in base62, left-padded to `width`.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut buf = [0u8; 43];
    let at = base62_digits(bytes, &mut buf).min(buf.len().saturating_sub(width));
    let mut out = "0".repeat(width.saturating_sub(buf.len()));
    out.push_str(std::str::from_utf8(&buf[at..]).expect("alphabet is ASCII"));
    out
}

/// The checksum of everything before it: the first 4 bytes of its SHA-256 in base62.
fn check(head: &str) -> [u8; CHECK_LEN] {
    let digest = Sha256::digest(head.as_bytes());
    let mut buf = [0u8; 43];
    // Four bytes are below 62^6: the digits fit the width.
    base62_digits(&digest[..4], &mut buf);
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&buf[buf.len() - CHECK_LEN..]);
    out
}

/// The label part of a key (`a-z 0-9`, at most 16) for a text (a partition environment).
pub fn label(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(16)
        .collect()
}

/// A kind of key: its mark.
#[derive(Clone, Copy, Debug)]
pub struct KeyFormat {
    pub mark: &'static str,
}

impl KeyFormat {
    /// A kind of key marked `mark` (ending in `_`).
    pub const fn new(mark: &'static str) -> KeyFormat {
        KeyFormat { mark }
    }

    /// A new key with the label of `text`: (the key, its public prefix).
    pub fn generate(&self, text: &str) -> (String, String) {
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        let head = format!("{}{}_{}", self.mark, label(text), base62(&random, BODY_LEN));
        let mut key = head;
        key.push_str(std::str::from_utf8(&check(&key)).expect("alphabet is ASCII"));
        let prefix = self
            .public_prefix(&key)
            .expect("a generated key is well formed")
            .to_string();
        (key, prefix)
    }

    /// The public prefix of a well-formed key; `None` if the key is malformed (wrong mark,
    /// shape, alphabet, length or checksum). Checked on every verification before anything
    /// else, so it allocates nothing.
    pub fn public_prefix<'k>(&self, key: &'k str) -> Option<&'k str> {
        let rest = key.strip_prefix(self.mark)?;
        let (env, tail) = rest.split_once('_')?;
        let env_ok = (1..=16).contains(&env.len())
            && env
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !env_ok
            || tail.len() != BODY_LEN + CHECK_LEN
            || !tail.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return None;
        }
        let head = &key[..key.len() - CHECK_LEN];
        if check(head) != key.as_bytes()[key.len() - CHECK_LEN..] {
            return None;
        }
        Some(&key[..self.mark.len() + env.len() + 1 + PREFIX_BODY])
    }
}

/// The stored form of a key: HMAC-SHA256 under the server-side pepper.
pub fn hash(pepper: &[u8], key: &str) -> Vec<u8> {
    hash_array(pepper, key).to_vec()
}

/// [`hash`] without an allocation.
pub fn hash_array(pepper: &[u8], key: &str) -> [u8; 32] {
    KeyHasher::new(pepper).hash(key)
}

/// [`hash`] under one pepper, with HMAC's keyed state computed once: each hash then starts
/// from a copy of it (half the SHA-256 blocks of keying afresh, on every verification).
#[derive(Clone)]
pub struct KeyHasher(Hmac<Sha256>);

impl KeyHasher {
    pub fn new(pepper: &[u8]) -> Self {
        Self(<Hmac<Sha256> as KeyInit>::new_from_slice(pepper).expect("HMAC takes any key"))
    }

    /// HMAC-SHA256(pepper, key).
    pub fn hash(&self, key: &str) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPK: KeyFormat = KeyFormat::new("cpk_");

    fn generate(text: &str) -> (String, String) {
        CPK.generate(text)
    }

    fn public_prefix(key: &str) -> Option<&str> {
        CPK.public_prefix(key)
    }

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let (a, prefix) = generate("prod");
        let (b, _) = generate("prod");
        assert_ne!(a, b);
        assert!(a.starts_with("cpk_prod_"));
        assert_eq!(a.len(), "cpk_prod_".len() + 43 + 6);
        assert_eq!(public_prefix(&a), Some(prefix.as_str()));
        assert_eq!(prefix.len(), "cpk_prod_".len() + 6);
        assert!(a.starts_with(&prefix));
        let (c, _) = generate("EU West 2");
        assert!(c.starts_with("cpk_euwest2_"));
    }

    #[test]
    fn malformed_keys_are_refused_without_a_lookup() {
        let (k, _) = generate("dev");
        assert!(public_prefix(&k[..k.len() - 1]).is_none(), "truncated");
        let mut typo = k.clone().into_bytes();
        let i = 20;
        typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
        assert!(
            public_prefix(std::str::from_utf8(&typo).unwrap()).is_none(),
            "typo"
        );
        assert!(public_prefix("cpk_dev_").is_none());
        assert!(public_prefix("sk_live_abc").is_none());
        assert!(
            KeyFormat::new("csk_").public_prefix(&k).is_none(),
            "another kind of key"
        );
        assert!(public_prefix(&k.replace("cpk_dev_", "cpk_DEV_")).is_none());
    }

    #[test]
    fn hashes_depend_on_the_pepper() {
        let (k, _) = generate("qa");
        let keyed = KeyHasher::new(b"pepper-one");
        assert_eq!(keyed.hash(&k).to_vec(), hash(b"pepper-one", &k));
        assert_eq!(
            keyed.hash(&k),
            keyed.hash(&k),
            "the keyed state is not consumed"
        );
        assert_eq!(hash(b"pepper-one", &k), hash(b"pepper-one", &k));
        assert_ne!(hash(b"pepper-one", &k), hash(b"pepper-two", &k));
        assert_eq!(base62(&[0, 0, 61], 3), "00z");
        assert_eq!(base62(&[1, 0], 1), "48");
    }
}

/// The `service.key_pepper` setting of a service that issues keys: the server-side secret they
/// are hashed with (HMAC-SHA256), at least 32 characters, never printed. Each service has a
/// development default ([`Pepper::dev`]) that every deployment replaces, and says so at start
/// when it is still in use ([`Pepper::warn_if_dev`]). Changing it invalidates every key.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(transparent)]
pub struct Pepper(crate::config::Secret<String>);

impl Pepper {
    /// A service's local development pepper.
    pub fn dev(value: &str) -> Pepper {
        Pepper(crate::config::Secret::new(value.to_string()))
    }

    /// At least 32 characters, else the configuration error naming `service.key_pepper`.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.0.expose().len() < 32 {
            anyhow::bail!(
                "invalid configuration: service.key_pepper: must be at least 32 characters"
            );
        }
        Ok(())
    }

    /// Warns when the pepper is still the development one `dev`, naming the variable that sets
    /// it (`<SERVICE>__SERVICE__KEY_PEPPER`).
    pub fn warn_if_dev(&self, dev: &str, variable: &str) {
        if self.0.expose() == dev {
            tracing::warn!("service.key_pepper is the local development default: set {variable}");
        }
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose().as_bytes()
    }

    pub fn hasher(&self) -> KeyHasher {
        KeyHasher::new(self.expose())
    }
}

#[cfg(test)]
mod pepper_tests {
    use super::*;

    #[test]
    fn a_short_pepper_is_refused_naming_the_setting() {
        let err = Pepper::dev("too short").validate().unwrap_err().to_string();
        assert!(err.contains("service.key_pepper"), "{err}");
        assert!(Pepper::dev(&"x".repeat(32)).validate().is_ok());
        assert!(
            !format!("{:?}", Pepper::dev("secret-value-secret-value-secret"))
                .contains("secret-value")
        );
    }
}
