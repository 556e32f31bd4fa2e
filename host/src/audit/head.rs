//! The signed head file: a small JSON record beside the log (`<log>.head`) naming
//! the last committed entry, so a verifier can tell a log that was cut short from
//! one that simply ends.
//!
//! Format (one canonical JSON object):
//! `{"entry_id":…,"hmac":…,"instance":…,"key_id":…,"seq":N,"sig":…,"ts_ns":…,"v":1}`
//! where `sig = hex(HMAC-SHA256(K, canonical(head without "sig")))` and
//! `K = HMAC-SHA256(secret of key_id, "signet head key v1")`. The derived key means a
//! head signature can never be replayed as (or confused with) an entry hmac.
//! HMAC rather than Ed25519: whoever can check the chain holds the secret anyway.
//!
//! The syncer rewrites it from the last durable position (see [`super::syncer`]), via
//! temp file + fsync + rename + directory fsync (with `fsync = never`: no fsyncs).
//! The log is therefore never behind a durable head unless the log lost data.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::canonical::write_value;
use super::entry::hmac_parts;
use super::keys::{HmacKey, Keyring};

/// Label of the derived head-signing key.
pub const HEAD_KEY_LABEL: &str = "signet head key v1";

/// Reading or writing a head file failed.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// I/O on the head file or its temp file.
    #[error("audit head file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a head record.
    #[error("audit head file {path} is not a valid head record ({detail}); if it is damaged, move it aside (truncation at the end of the log then goes undetected until the next write)")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

/// The head record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Format version (1).
    pub v: u32,
    /// `_seq` of the last committed entry.
    pub seq: u64,
    /// Its entry id.
    pub entry_id: String,
    /// Its hmac.
    pub hmac: String,
    /// Id of the key whose derived key signed this head.
    pub key_id: String,
    /// Writing instance.
    pub instance: String,
    /// When the head was written.
    pub ts_ns: u64,
    /// Signature (hex).
    pub sig: String,
}

/// `<log>.head`.
pub fn head_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".head");
    PathBuf::from(name)
}

impl Head {
    /// A head for the entry `seq`/`entry_id`/`hmac`, signed with `key`.
    pub fn new(
        seq: u64,
        entry_id: &str,
        hmac: &str,
        key: &HmacKey,
        instance: &str,
        ts_ns: u64,
    ) -> Self {
        let mut head = Self {
            v: 1,
            seq,
            entry_id: entry_id.to_owned(),
            hmac: hmac.to_owned(),
            key_id: key.id().to_owned(),
            instance: instance.to_owned(),
            ts_ns,
            sig: String::new(),
        };
        head.sig = head.signature(key);
        head
    }

    fn unsigned_json(&self) -> serde_json::Value {
        json!({"v": self.v, "seq": self.seq, "entry_id": self.entry_id, "hmac": self.hmac,
               "key_id": self.key_id, "instance": self.instance, "ts_ns": self.ts_ns})
    }

    fn signature(&self, key: &HmacKey) -> String {
        let mut payload = Vec::new();
        // Only strings and integers: canonicalisation cannot fail.
        let _ = write_value(&self.unsigned_json(), &mut payload);
        hmac_parts(&key.derive(HEAD_KEY_LABEL), &[&payload])
    }

    /// Check the signature against the keyring; `Err` says why it is not trusted.
    pub fn verify(&self, keys: &Keyring) -> Result<(), String> {
        if self.v != 1 {
            return Err(format!("unsupported head version {}", self.v));
        }
        let key = keys.get(&self.key_id).ok_or_else(|| {
            format!(
                "head is signed with key {:?}, which is not in the keyring ({})",
                self.key_id,
                keys.ids().join(", ")
            )
        })?;
        if self.signature(key) == self.sig {
            Ok(())
        } else {
            Err("head signature does not match (the head file was altered, or the wrong secret was given)".to_owned())
        }
    }

    /// The file contents (canonical JSON + newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut value = self.unsigned_json();
        if let Some(map) = value.as_object_mut() {
            map.insert("sig".into(), self.sig.clone().into());
        }
        let mut out = Vec::new();
        let _ = write_value(&value, &mut out);
        out.push(b'\n');
        out
    }
}

/// Read a head file; `Ok(None)` when there is none.
pub fn read_head(path: &Path) -> Result<Option<Head>, HeadError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(HeadError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| HeadError::Malformed {
            path: path.to_owned(),
            detail: e.to_string(),
        })
}

/// Replace the head file atomically; `durable` adds the fsyncs.
pub fn write_head(path: &Path, head: &Head, durable: bool) -> Result<(), HeadError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| HeadError::Io { path: p, source }
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(io(&tmp))?;
    f.write_all(&head.to_bytes()).map_err(io(&tmp))?;
    if durable {
        f.sync_all().map_err(io(&tmp))?;
    }
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if durable {
        sync_dir(path).map_err(io(path))?;
    }
    Ok(())
}

/// fsync the directory containing `path` (makes a rename or create durable).
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trips_and_detects_tampering() {
        let dir = std::env::temp_dir().join(format!("signet-head-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = head_path(&dir.join("audit.jsonl"));
        assert!(read_head(&path).unwrap().is_none());
        let key = HmacKey::new("k1", vec![3; 32]).unwrap();
        let ring = Keyring::new(key.clone());
        let head = Head::new(7, "e7", &"a".repeat(64), &key, "i", 1);
        write_head(&path, &head, true).unwrap();
        let back = read_head(&path).unwrap().unwrap();
        assert_eq!(back, head);
        assert_eq!(back.verify(&ring), Ok(()));
        // The head signature is not a plain HMAC with the chain key.
        let mut payload = Vec::new();
        write_value(&head.unsigned_json(), &mut payload).unwrap();
        assert_ne!(hmac_parts(key.secret(), &[&payload]), head.sig);
        let forged = Head {
            seq: 6,
            ..head.clone()
        };
        assert!(forged.verify(&ring).is_err());
        let other = Keyring::new(HmacKey::new("k2", vec![3; 32]).unwrap());
        assert!(head
            .verify(&other)
            .unwrap_err()
            .contains("not in the keyring"));
        std::fs::write(&path, "{}").unwrap();
        assert!(matches!(read_head(&path), Err(HeadError::Malformed { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
