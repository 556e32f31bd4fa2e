//! Keys: the audit HMAC key (id + secret), the keyring of retired keys that keeps
//! rotated logs verifiable, ephemeral keys, derived sub-keys, and Ed25519 key files.
//!
//! Secrets are hex (an optional `0x` prefix and surrounding whitespace are ignored).
//! A signing key needs at least 32 bytes; a key used only to verify needs 16, which
//! is signet-sign's own minimum, so its older chains stay checkable.
//!
//! Keyring file (retired keys, verification only), JSON:
//! `{"keys": [{"id": "k0", "secret_hex": "<hex>"}, ...]}`. Unknown fields are errors.
//!
//! Ed25519 key files are text: `#` comment lines and one line of hex — the 32-byte
//! seed in the private file (written 0600), the 32-byte public key in `<path>.pub`.
//! An Ed25519 key id is `ed25519:` + the first 16 hex digits of SHA-256(public key).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

use super::entry::{hex, hmac_raw, sha256_hex};

/// Minimum secret length for a key that signs.
pub const MIN_SIGNING_SECRET: usize = 32;
/// Minimum secret length for a key that only verifies (signet-sign's minimum).
pub const MIN_VERIFY_SECRET: usize = 16;
/// Environment variable read for the audit secret when no flag is given.
pub const SECRET_ENV: &str = "SIGNET_HMAC_SECRET";

/// Problems with key material, each naming its source and the fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Secret text is not hex.
    #[error(
        "{source_name} is not valid hex ({detail}); generate a secret with `openssl rand -hex 32`"
    )]
    BadHex {
        /// Flag, env var or file the secret came from.
        source_name: String,
        /// What was wrong.
        detail: String,
    },
    /// Secret is too short.
    #[error("{source_name} decodes to {len} bytes but at least {min} are required; generate a secret with `openssl rand -hex 32`")]
    TooShort {
        /// Flag, env var or file the secret came from.
        source_name: String,
        /// Decoded length.
        len: usize,
        /// Required length.
        min: usize,
    },
    /// No secret anywhere.
    #[error("no audit HMAC secret: pass --hmac-secret HEX or set {env} (hex, at least 32 bytes; e.g. `openssl rand -hex 32`)")]
    Missing {
        /// The env var that was consulted.
        env: String,
    },
    /// Key id with characters outside the allowed set.
    #[error("key id {id:?} is invalid: use 1-64 characters from [A-Za-z0-9_.:-], e.g. 'k1' or 'prod-2026-11'")]
    BadId {
        /// The offending id.
        id: String,
    },
    /// Two keys with one id.
    #[error("key id {id:?} appears twice in the keyring (check {path})")]
    DuplicateId {
        /// The repeated id.
        id: String,
        /// Where the keyring came from.
        path: String,
    },
    /// A key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A keyring or key file has the wrong shape.
    #[error("{path}: {detail}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What was wrong and how to fix it.
        detail: String,
    },
    /// Refusing to overwrite an existing key file.
    #[error("{path} already exists; refusing to overwrite a key file (choose another --out or delete it first)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The OS random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}

/// An HMAC key: id + secret. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacKey {
    id: String,
    secret: Vec<u8>,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HmacKey({}, <{} bytes redacted>)",
            self.id,
            self.secret.len()
        )
    }
}

impl HmacKey {
    /// A signing key (secret of at least [`MIN_SIGNING_SECRET`] bytes).
    pub fn new(id: &str, secret: Vec<u8>) -> Result<Self, KeyError> {
        Self::with_min(id, secret, MIN_SIGNING_SECRET, "secret")
    }

    /// A key that only verifies (secret of at least [`MIN_VERIFY_SECRET`] bytes).
    pub fn for_verification(id: &str, secret: Vec<u8>) -> Result<Self, KeyError> {
        Self::with_min(id, secret, MIN_VERIFY_SECRET, "secret")
    }

    /// Parse a hex secret; `source_name` (e.g. `--hmac-secret`) goes into errors.
    pub fn from_hex(
        id: &str,
        hex_text: &str,
        source_name: &str,
        signing: bool,
    ) -> Result<Self, KeyError> {
        let secret = parse_hex(hex_text, source_name)?;
        let min = if signing {
            MIN_SIGNING_SECRET
        } else {
            MIN_VERIFY_SECRET
        };
        Self::with_min(id, secret, min, source_name)
    }

    fn with_min(
        id: &str,
        secret: Vec<u8>,
        min: usize,
        source_name: &str,
    ) -> Result<Self, KeyError> {
        validate_key_id(id)?;
        if secret.len() < min {
            return Err(KeyError::TooShort {
                source_name: source_name.to_owned(),
                len: secret.len(),
                min,
            });
        }
        Ok(Self {
            id: id.to_owned(),
            secret,
        })
    }

    /// A random 32-byte key. The caller prints [`HmacKey::secret_hex`] once, with a
    /// warning that the log is unverifiable without it.
    pub fn ephemeral(id: &str) -> Result<Self, KeyError> {
        let mut secret = vec![0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        Self::new(id, secret)
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The raw secret.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The secret as hex (to show an ephemeral key once).
    pub fn secret_hex(&self) -> String {
        hex(&self.secret)
    }

    /// A sub-key for another purpose: `HMAC-SHA256(secret, label)`. Labels used:
    /// `signet head key v1`, `signet receipt key v2`.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        hmac_raw(&self.secret, &[label.as_bytes()])
    }
}

/// Where the audit secret can come from; the first one set wins (flag, env, file).
#[derive(Debug, Clone, Default)]
pub struct SecretSources<'a> {
    /// `--hmac-secret HEX`.
    pub flag: Option<&'a str>,
    /// Name of the environment variable to read (default [`SECRET_ENV`]).
    pub env_var: Option<&'a str>,
    /// A file holding the hex secret.
    pub file: Option<&'a Path>,
}

/// Load the key `id` from the first source that is set. `signing` selects the
/// 32-byte (signing) or 16-byte (verify-only) minimum.
pub fn load_key(id: &str, sources: &SecretSources<'_>, signing: bool) -> Result<HmacKey, KeyError> {
    if let Some(flag) = sources.flag {
        return HmacKey::from_hex(id, flag, "--hmac-secret", signing);
    }
    let env = sources.env_var.unwrap_or(SECRET_ENV);
    if let Ok(value) = std::env::var(env) {
        if !value.trim().is_empty() {
            return HmacKey::from_hex(id, &value, env, signing);
        }
    }
    if let Some(path) = sources.file {
        let text = read_text(path)?;
        return HmacKey::from_hex(id, &text, &path.display().to_string(), signing);
    }
    Err(KeyError::Missing {
        env: env.to_owned(),
    })
}

/// The active signing key plus retired keys that still verify old entries.
#[derive(Debug, Clone)]
pub struct Keyring {
    active: HmacKey,
    retired: Vec<HmacKey>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    keys: Vec<KeyringFileKey>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFileKey {
    id: String,
    secret_hex: String,
}

impl Keyring {
    /// A ring with one key.
    pub fn new(active: HmacKey) -> Self {
        Self {
            active,
            retired: Vec::new(),
        }
    }

    /// Add retired keys; ids must be unique across the ring. A retired key with the
    /// active key's id and secret is ignored (a keyring listing every key is fine).
    pub fn with_retired(mut self, keys: Vec<HmacKey>, origin: &str) -> Result<Self, KeyError> {
        for key in keys {
            if key == self.active {
                continue;
            }
            if self.get(key.id()).is_some() {
                return Err(KeyError::DuplicateId {
                    id: key.id,
                    path: origin.to_owned(),
                });
            }
            self.retired.push(key);
        }
        Ok(self)
    }

    /// Read a keyring file (format in the module doc).
    pub fn load_file(path: &Path) -> Result<Vec<HmacKey>, KeyError> {
        let text = read_text(path)?;
        let file: KeyringFile = serde_json::from_str(&text).map_err(|e| KeyError::BadFile {
            path: path.to_owned(),
            detail: format!(
                "{e}; expected {{\"keys\": [{{\"id\": \"k0\", \"secret_hex\": \"<hex>\"}}]}}"
            ),
        })?;
        let mut seen = std::collections::HashSet::new();
        let mut keys = Vec::new();
        for (i, k) in file.keys.into_iter().enumerate() {
            if !seen.insert(k.id.clone()) {
                return Err(KeyError::DuplicateId {
                    id: k.id,
                    path: path.display().to_string(),
                });
            }
            let source = format!("{} keys[{i}] ({})", path.display(), k.id);
            keys.push(HmacKey::from_hex(&k.id, &k.secret_hex, &source, false)?);
        }
        Ok(keys)
    }

    /// The key that signs new entries.
    pub fn active(&self) -> &HmacKey {
        &self.active
    }

    /// Look a key up by id.
    pub fn get(&self, id: &str) -> Option<&HmacKey> {
        std::iter::once(&self.active)
            .chain(&self.retired)
            .find(|k| k.id == id)
    }

    /// All ids, active first.
    pub fn ids(&self) -> Vec<&str> {
        std::iter::once(&self.active)
            .chain(&self.retired)
            .map(|k| k.id.as_str())
            .collect()
    }
}

/// Check a key id against `[A-Za-z0-9_.:-]{1,64}`.
pub fn validate_key_id(id: &str) -> Result<(), KeyError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadId { id: id.to_owned() })
    }
}

/// Decode hex (whitespace and a `0x` prefix ignored).
pub fn parse_hex(text: &str, source_name: &str) -> Result<Vec<u8>, KeyError> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let bad = |detail: String| KeyError::BadHex {
        source_name: source_name.to_owned(),
        detail,
    };
    if t.len() & 1 == 1 {
        return Err(bad(format!("odd number of hex digits ({})", t.len())));
    }
    let mut out = Vec::with_capacity(t.len() / 2);
    for (i, pair) in t.as_bytes().chunks(2).enumerate() {
        let digit = |j: usize| {
            char::from(pair[j]).to_digit(16).ok_or_else(|| {
                let b = pair[j];
                let shown = if b.is_ascii_graphic() {
                    format!("{:?}", char::from(b))
                } else {
                    format!("byte 0x{b:02x}")
                };
                bad(format!(
                    "{shown} at position {} is not a hex digit",
                    2 * i + j
                ))
            })
        };
        out.push(u8::try_from(digit(0)? * 16 + digit(1)?).unwrap_or(0));
    }
    Ok(out)
}

fn read_text(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The id of an Ed25519 public key: `ed25519:` + 16 hex digits of its SHA-256.
pub fn ed25519_key_id(key: &VerifyingKey) -> String {
    format!("ed25519:{}", &sha256_hex(key.as_bytes())[..16])
}

/// Paths and id of a freshly generated Ed25519 key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKeyPair {
    /// The private key file (0600).
    pub private_path: PathBuf,
    /// The public key file (`<private>.pub`).
    pub public_path: PathBuf,
    /// The key id receipts will carry.
    pub key_id: String,
}

/// Generate an Ed25519 key pair into `out` and `out.pub`; never overwrites.
pub fn generate_ed25519(out: &Path) -> Result<GeneratedKeyPair, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    let signing = SigningKey::from_bytes(&seed);
    let public = signing.verifying_key();
    let key_id = ed25519_key_id(&public);
    let mut pub_name = out.as_os_str().to_owned();
    pub_name.push(".pub");
    let public_path = PathBuf::from(pub_name);
    for p in [out, public_path.as_path()] {
        if p.exists() {
            return Err(KeyError::Exists { path: p.to_owned() });
        }
    }
    let private_text = format!(
        "# signet ed25519 private key (receipts); keep it secret. id={key_id}\n{}\n",
        hex(&seed)
    );
    write_new(out, private_text.as_bytes(), 0o600)?;
    let public_text = format!(
        "# signet ed25519 public key. id={key_id}\n{}\n",
        hex(public.as_bytes())
    );
    write_new(&public_path, public_text.as_bytes(), 0o644)?;
    Ok(GeneratedKeyPair {
        private_path: out.to_owned(),
        public_path,
        key_id,
    })
}

/// Read an Ed25519 private key file.
pub fn load_ed25519_private(path: &Path) -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&key_file_bytes(path, "private")?))
}

/// Read an Ed25519 public key file.
pub fn load_ed25519_public(path: &Path) -> Result<VerifyingKey, KeyError> {
    let bytes = key_file_bytes(path, "public")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| KeyError::BadFile {
        path: path.to_owned(),
        detail: format!("not a valid Ed25519 public key: {e}"),
    })
}

fn key_file_bytes(path: &Path, kind: &str) -> Result<[u8; 32], KeyError> {
    let text = read_text(path)?;
    let bad = |detail: String| KeyError::BadFile {
        path: path.to_owned(),
        detail,
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let [line] = lines.as_slice() else {
        return Err(bad(format!(
            "expected one line of hex (an Ed25519 {kind} key written by `signet keys generate`), found {}",
            lines.len()
        )));
    };
    let bytes = parse_hex(line, &path.display().to_string())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        bad(format!(
            "an Ed25519 {kind} key is 32 bytes (64 hex digits), this has {}",
            bytes.len()
        ))
    })
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn hex_errors_name_the_source_and_the_fix() {
        let e = HmacKey::from_hex("k1", "zz", "--hmac-secret", true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--hmac-secret") && e.contains("openssl rand -hex 32"),
            "{e}"
        );
        let e = HmacKey::from_hex("k1", &"ab".repeat(31), "SIGNET_HMAC_SECRET", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("31 bytes") && e.contains("at least 32"), "{e}");
        assert!(HmacKey::from_hex("k1", &"ab".repeat(16), "x", false).is_ok());
        assert!(HmacKey::from_hex("k1", &format!("0x{}\n", "AB".repeat(32)), "x", true).is_ok());
        assert!(HmacKey::new("bad id", vec![0; 32]).is_err());
    }

    #[test]
    fn keyring_file_adds_retired_keys() {
        let dir = std::env::temp_dir().join(format!("signet-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ring.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"keys":[{{"id":"k0","secret_hex":"{}"}}]}}"#,
                "11".repeat(32)
            ),
        )
        .unwrap();
        let ring = Keyring::new(HmacKey::new("k1", vec![2; 32]).unwrap())
            .with_retired(Keyring::load_file(&path).unwrap(), "ring.json")
            .unwrap();
        assert_eq!(ring.ids(), vec!["k1", "k0"]);
        assert_eq!(ring.get("k0").unwrap().secret(), &[0x11; 32]);
        std::fs::write(&path, r#"{"keys":[{"id":"k0","secret":"11"}]}"#).unwrap();
        assert!(Keyring::load_file(&path)
            .unwrap_err()
            .to_string()
            .contains("secret_hex"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ephemeral_keys_are_random_and_long_enough() {
        let a = HmacKey::ephemeral("k1").unwrap();
        assert_eq!(a.secret().len(), 32);
        assert_ne!(a.secret(), HmacKey::ephemeral("k1").unwrap().secret());
        assert!(!format!("{a:?}").contains(&a.secret_hex()));
    }

    #[test]
    fn ed25519_files_round_trip_and_are_private() {
        let dir = std::env::temp_dir().join(format!("signet-ed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("receipt.key");
        let pair = generate_ed25519(&out).unwrap();
        let sk = load_ed25519_private(&out).unwrap();
        let pk = load_ed25519_public(&pair.public_path).unwrap();
        assert_eq!(sk.verifying_key(), pk);
        assert_eq!(ed25519_key_id(&pk), pair.key_id);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(matches!(
            generate_ed25519(&out),
            Err(KeyError::Exists { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
