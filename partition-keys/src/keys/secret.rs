//! API keys: the kit's key format ([`shared_model::keys`]) marked `cpk_`, labelled with the
//! partition's environment (`cpk_prod_...`).

use shared_model::keys::KeyFormat;
pub use shared_model::keys::{KeyHasher, hash, hash_array};

/// The mark of an API key.
pub const FORMAT: KeyFormat = KeyFormat::new("cpk_");

/// A new key for a partition environment: (the key, its public prefix).
pub fn generate(environment: &str) -> (String, String) {
    FORMAT.generate(environment)
}

/// The public prefix of a well-formed key; `None` if it is malformed.
pub fn public_prefix(key: &str) -> Option<&str> {
    FORMAT.public_prefix(key)
}
