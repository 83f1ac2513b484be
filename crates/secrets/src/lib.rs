//! Secrets at rest. Store credentials (WooCommerce keys, feed tokens, …) are encrypted with
//! AES-256-GCM before they reach the database. Ciphertexts carry a format version and the id
//! of the key that made them, so an operator can rotate the key: the new key encrypts, old
//! keys listed beside it still decrypt, and [`Keyring::needs_rotation`] finds what to
//! re-encrypt.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of every ciphertext this crate writes; bump it if the layout ever changes.
const FORMAT_VERSION: &str = "v1";
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("encryption key must be 32 bytes given as base64 or 64 hex characters")]
    InvalidKey,
    #[error("ciphertext is not in a format this version understands")]
    Malformed,
    #[error("ciphertext was made with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("ciphertext failed authentication (wrong key, wrong context or tampered)")]
    Tampered,
    #[error("could not read or write the key file: {0}")]
    Io(#[from] std::io::Error),
}

/// A value that must never be printed: `Debug` and `Display` show a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The only way to see the value; grep for it when auditing.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One 256-bit key and its short public id (a hash prefix, safe to log).
#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    bytes: [u8; 32],
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey({})", self.id)
    }
}

impl EncryptionKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::digest(bytes);
        EncryptionKey {
            id: hex::encode(&digest[..4]),
            bytes,
        }
    }

    /// Accepts 64 hex characters or base64 (standard or URL-safe, padded or not) of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, SecretsError> {
        let text = text.trim();
        let decoded = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| SecretsError::InvalidKey)?
        } else {
            let normalized: String = text
                .trim_end_matches('=')
                .chars()
                .map(|c| match c {
                    '+' => '-',
                    '/' => '_',
                    other => other,
                })
                .collect();
            URL_SAFE_NO_PAD
                .decode(normalized)
                .map_err(|_| SecretsError::InvalidKey)?
        };
        let bytes: [u8; 32] = decoded.try_into().map_err(|_| SecretsError::InvalidKey)?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Standard base64, the form written to key files and shown in docs.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// Derives a separate key for another purpose (e.g. signing access tokens) so one
    /// configured secret can serve several uses without the uses sharing key material.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"ultimate-optimizer key derivation\0");
        hasher.update(purpose.as_bytes());
        hasher.update([0]);
        hasher.update(self.bytes);
        hasher.finalize().into()
    }
}

/// The current key plus older keys that may still decrypt existing ciphertexts.
#[derive(Debug, Clone)]
pub struct Keyring {
    primary: EncryptionKey,
    previous: Vec<EncryptionKey>,
}

impl Keyring {
    pub fn new(primary: EncryptionKey, previous: Vec<EncryptionKey>) -> Self {
        Keyring { primary, previous }
    }

    pub fn primary(&self) -> &EncryptionKey {
        &self.primary
    }

    /// Encrypts `plaintext`, binding it to `context` (e.g. `store:<id>:credentials`) so a
    /// ciphertext copied into another row does not decrypt there.
    pub fn encrypt(&self, plaintext: &[u8], context: &str) -> String {
        let cipher = Aes256Gcm::new_from_slice(&self.primary.bytes).expect("32-byte key");
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        format!(
            "{FORMAT_VERSION}.{}.{}",
            self.primary.id,
            URL_SAFE_NO_PAD.encode(blob)
        )
    }

    pub fn decrypt(&self, ciphertext: &str, context: &str) -> Result<Vec<u8>, SecretsError> {
        let mut parts = ciphertext.splitn(3, '.');
        let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SecretsError::Malformed);
        };
        if version != FORMAT_VERSION {
            return Err(SecretsError::Malformed);
        }
        let key = std::iter::once(&self.primary)
            .chain(self.previous.iter())
            .find(|key| key.id == key_id)
            .ok_or_else(|| SecretsError::UnknownKey(key_id.to_owned()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SecretsError::Malformed)?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(SecretsError::Malformed);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new_from_slice(&key.bytes).expect("32-byte key");
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Tampered)
    }

    /// True when the ciphertext was not made with the primary key and should be re-encrypted.
    pub fn needs_rotation(&self, ciphertext: &str) -> bool {
        ciphertext
            .split('.')
            .nth(1)
            .is_none_or(|id| id != self.primary.id)
    }
}

/// Reads the development key from `path`, creating it (mode 0600) on first use. Returns the
/// key and whether it was just created, so the caller can warn that it is a development key.
pub fn load_or_create_key_file(path: &Path) -> Result<(EncryptionKey, bool), SecretsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((EncryptionKey::parse(&text)?, false)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let key = EncryptionKey::generate();
            write_private_file(path, key.to_base64().as_bytes())?;
            Ok((key, true))
        }
        Err(err) => Err(err.into()),
    }
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_the_context() {
        let ring = Keyring::new(EncryptionKey::generate(), vec![]);
        let sealed = ring.encrypt(b"ck_live_123", "store:1:credentials");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("ck_live_123"));
        assert_eq!(
            ring.decrypt(&sealed, "store:1:credentials").unwrap(),
            b"ck_live_123"
        );
        assert!(matches!(
            ring.decrypt(&sealed, "store:2:credentials"),
            Err(SecretsError::Tampered)
        ));
    }

    #[test]
    fn same_plaintext_encrypts_differently_each_time() {
        let ring = Keyring::new(EncryptionKey::generate(), vec![]);
        assert_ne!(ring.encrypt(b"x", "c"), ring.encrypt(b"x", "c"));
    }

    #[test]
    fn tampering_is_detected() {
        let ring = Keyring::new(EncryptionKey::generate(), vec![]);
        let sealed = ring.encrypt(b"secret value", "ctx");
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(ring.decrypt(&tampered, "ctx").is_err());
        assert!(matches!(
            ring.decrypt("garbage", "ctx"),
            Err(SecretsError::Malformed)
        ));
        assert!(matches!(
            ring.decrypt("v2.abc.def", "ctx"),
            Err(SecretsError::Malformed)
        ));
    }

    #[test]
    fn rotation_keeps_old_ciphertexts_readable() {
        let old = EncryptionKey::generate();
        let old_ring = Keyring::new(old.clone(), vec![]);
        let sealed = old_ring.encrypt(b"token", "ctx");

        let new_ring = Keyring::new(EncryptionKey::generate(), vec![old]);
        assert!(new_ring.needs_rotation(&sealed));
        assert_eq!(new_ring.decrypt(&sealed, "ctx").unwrap(), b"token");
        let resealed = new_ring.encrypt(b"token", "ctx");
        assert!(!new_ring.needs_rotation(&resealed));

        let stranger = Keyring::new(EncryptionKey::generate(), vec![]);
        assert!(matches!(
            stranger.decrypt(&sealed, "ctx"),
            Err(SecretsError::UnknownKey(_))
        ));
    }

    #[test]
    fn keys_parse_from_hex_and_both_base64_alphabets() {
        let key = EncryptionKey::generate();
        let b64 = key.to_base64();
        assert_eq!(EncryptionKey::parse(&b64).unwrap().id(), key.id());
        let url = b64
            .replace('+', "-")
            .replace('/', "_")
            .trim_end_matches('=')
            .to_owned();
        assert_eq!(EncryptionKey::parse(&url).unwrap().id(), key.id());
        assert_eq!(
            EncryptionKey::parse(&hex::encode(key.bytes)).unwrap().id(),
            key.id()
        );
        assert!(EncryptionKey::parse("too-short").is_err());
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/encryption.key");
        let (first, created) = load_or_create_key_file(&path).unwrap();
        assert!(created);
        let (second, created_again) = load_or_create_key_file(&path).unwrap();
        assert!(!created_again);
        assert_eq!(first.id(), second.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2".to_string());
        assert_eq!(format!("{secret:?} {secret}"), "Secret(***) ***");
        assert_eq!(secret.expose(), "hunter2");
    }
}
