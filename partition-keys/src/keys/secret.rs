//! API key format, generation and hashing.
//!
//! A key reads `cpk_<environment>_<body><check>`:
//! - `cpk_` marks a customer-platform key (easy to scan for in leaked text);
//! - `<environment>` is the partition's environment (`prod`, `dev`, ... or its custom label);
//! - `<body>` is 256 random bits in base62 (43 characters);
//! - `<check>` is 6 base62 characters of the SHA-256 of everything before it, so a mistyped
//!   or truncated key is refused without touching the database.
//!
//! Only HMAC-SHA256(pepper, key) is stored, with the public prefix (`cpk_prod_` plus the first
//! 6 body characters) for display. Lookup is by that keyed hash, so the database never holds
//! anything from which the key could be recovered without the server-side pepper.

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;
pub const MARK: &str = "cpk_";
/// Characters of the body shown in the public prefix.
const PREFIX_BODY: usize = 6;

/// `n` bytes (big-endian number) in base62, left-padded to `width`.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut num: Vec<u8> = bytes.to_vec();
    let mut out = Vec::new();
    while num.iter().any(|b| *b != 0) {
        let mut rem = 0u32;
        for b in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 62) as u8;
            rem = cur % 62;
        }
        out.push(ALPHABET[rem as usize]);
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("alphabet is ASCII")
}

fn check(head: &str) -> String {
    let digest = Sha256::digest(head.as_bytes());
    base62(&digest[..4], CHECK_LEN)
}

/// The environment part of a key for a partition environment (`a-z 0-9`, at most 16).
pub fn env_label(environment: &str) -> String {
    environment
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(16)
        .collect()
}

/// A new key for a partition environment: (the key, its public prefix).
pub fn generate(environment: &str) -> (String, String) {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let head = format!(
        "{MARK}{}_{}",
        env_label(environment),
        base62(&random, BODY_LEN)
    );
    let key = format!("{head}{}", check(&head));
    let prefix = public_prefix(&key).expect("a generated key is well formed");
    (key, prefix)
}

/// The public prefix of a well-formed key; `None` if the key is malformed (wrong shape,
/// alphabet, length or checksum).
pub fn public_prefix(key: &str) -> Option<String> {
    let rest = key.strip_prefix(MARK)?;
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
    if check(head) != key[key.len() - CHECK_LEN..] {
        return None;
    }
    Some(format!("{MARK}{env}_{}", &tail[..PREFIX_BODY]))
}

/// The stored form of a key: HMAC-SHA256 under the server-side pepper.
pub fn hash(pepper: &[u8], key: &str) -> Vec<u8> {
    hash_array(pepper, key).to_vec()
}

/// [`hash`] without an allocation.
pub fn hash_array(pepper: &[u8], key: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(pepper).expect("HMAC takes any key");
    mac.update(key.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let (a, prefix) = generate("prod");
        let (b, _) = generate("prod");
        assert_ne!(a, b);
        assert!(a.starts_with("cpk_prod_"));
        assert_eq!(a.len(), "cpk_prod_".len() + 43 + 6);
        assert_eq!(public_prefix(&a), Some(prefix.clone()));
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
        assert!(public_prefix(&k.replace("cpk_dev_", "cpk_DEV_")).is_none());
    }

    #[test]
    fn hashes_depend_on_the_pepper() {
        let (k, _) = generate("qa");
        assert_eq!(hash(b"pepper-one", &k), hash(b"pepper-one", &k));
        assert_ne!(hash(b"pepper-one", &k), hash(b"pepper-two", &k));
        assert_eq!(base62(&[0, 0, 61], 3), "00z");
        assert_eq!(base62(&[1, 0], 1), "48");
    }
}
