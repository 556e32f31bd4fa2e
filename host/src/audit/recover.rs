//! Opening a log for writing: create it (0600, parent dirs 0700), lock it, and find
//! where the chain continues — reading only the tail, backwards, never the whole file.
//!
//! Lock: an exclusive advisory lock (`File::try_lock`, i.e. `flock`) on the log file
//! itself, held for the writer's lifetime. A second gate on the same path fails at
//! start with [`WriterError::Locked`]; replicas use distinct paths (`{instance}` in
//! the configured path, see [`super::writer::expand_instance`]). signet-sign's
//! multi-process writer flocks the same file, so it cannot interleave either.
//!
//! Torn tail: bytes after the last newline, and trailing complete lines that are not
//! parseable entries, are what a crash mid-write leaves. They are moved to
//! `<log>.torn-<ts_ns>` (0600) and the log is truncated to the last entry (at most
//! [`MAX_TORN_BYTES`]; more is refused). A trailing fragment that is a whole valid
//! entry missing only its newline is kept and completed. A trailing entry that
//! parses but fails its HMAC is NOT torn — it means a wrong secret or tampering —
//! so the writer refuses to start rather than cut a log it cannot read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::entry::now_ns;
use super::head::{head_path, read_head, sync_dir, Head};
use super::keys::Keyring;
use super::line::{check_line, LineCheck, SelfStatus};
use super::writer::{io_err, WriterError};

/// Most bytes the writer will move aside automatically.
pub const MAX_TORN_BYTES: u64 = 1 << 20;
const MAX_WINDOW: u64 = 64 << 20;

/// Something recovery did or noticed at open (the CLI prints these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryWarning {
    /// Incomplete bytes at the end were moved aside and the log truncated.
    TornTail {
        /// The log.
        path: PathBuf,
        /// Where the bytes went.
        moved_to: PathBuf,
        /// How many.
        bytes: u64,
        /// Offset they started at.
        offset: u64,
    },
    /// The last entry's key is not in the keyring; the chain continues unverified.
    UnverifiedTail {
        /// The log.
        path: PathBuf,
        /// The entry.
        entry_id: String,
        /// Its key id.
        key_id: String,
    },
    /// The head file disagreed with the log (or was invalid) and was moved aside.
    StaleHead {
        /// The head file.
        head: PathBuf,
        /// Where it went.
        moved_to: PathBuf,
        /// Why.
        detail: String,
    },
}

impl std::fmt::Display for RecoveryWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TornTail { path, moved_to, bytes, offset } => write!(f, "audit log {}: {bytes} torn bytes at offset {offset} (an interrupted write) were moved to {} and the log truncated to its last complete entry", path.display(), moved_to.display()),
            Self::UnverifiedTail { path, entry_id, key_id } => write!(f, "audit log {}: the last entry {entry_id} is signed with key {key_id:?}, which is not in the keyring; continuing the chain from it unverified (add the key with --keyring)", path.display()),
            Self::StaleHead { head, moved_to, detail } => write!(f, "audit head {}: {detail}; moved to {} (keep it as evidence)", head.display(), moved_to.display()),
        }
    }
}

/// The last committed entry of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailEntry {
    /// Its `_seq` (absent in entries written by signet-sign).
    pub seq: Option<u64>,
    /// Its hmac (the next entry's `prev_hmac`).
    pub hmac: String,
    /// Its id.
    pub entry_id: String,
}

/// A log opened, locked and repaired, ready for appends.
#[derive(Debug)]
pub struct OpenedLog {
    /// Read + append handle holding the lock.
    pub file: File,
    /// Length after recovery.
    pub len: u64,
    /// The entry to continue from (`None`: empty log).
    pub last: Option<TailEntry>,
    /// What recovery did or noticed.
    pub warnings: Vec<RecoveryWarning>,
}

/// Open, lock and recover the log at `path`.
pub fn open_log(path: &Path, keys: &Keyring) -> Result<OpenedLog, WriterError> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(WriterError::Symlink {
            path: path.to_owned(),
        });
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(io_err(dir, "create directory"))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(path).map_err(io_err(path, "open"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(WriterError::Locked {
                path: path.to_owned(),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(path, "lock")(e)),
    }
    let len = file.metadata().map_err(io_err(path, "stat"))?.len();
    let mut warnings = Vec::new();
    let tail = find_tail(&mut file, path, len, keys, &mut warnings)?;
    let mut new_len = tail.good_end;
    if tail.good_end < len {
        let torn_path = sibling(path, &format!(".torn-{}", now_ns()));
        let torn = read_range(&mut file, path, tail.good_end, len)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut out = opts
            .open(&torn_path)
            .map_err(io_err(&torn_path, "create"))?;
        out.write_all(&torn)
            .and_then(|()| out.sync_all())
            .and_then(|()| sync_dir(&torn_path))
            .map_err(io_err(&torn_path, "write"))?;
        file.set_len(tail.good_end)
            .map_err(io_err(path, "truncate torn tail"))?;
        warnings.push(RecoveryWarning::TornTail {
            path: path.to_owned(),
            moved_to: torn_path,
            bytes: len - tail.good_end,
            offset: tail.good_end,
        });
    }
    if tail.needs_newline {
        file.write_all(b"\n")
            .map_err(io_err(path, "complete last line"))?;
        new_len += 1;
    }
    if new_len != len {
        file.sync_all().map_err(io_err(path, "fsync"))?;
    }
    check_head(path, keys, tail.last.as_ref(), &mut warnings)?;
    Ok(OpenedLog {
        file,
        len: new_len,
        last: tail.last,
        warnings,
    })
}

struct Tail {
    good_end: u64,
    needs_newline: bool,
    last: Option<TailEntry>,
}

fn find_tail(
    file: &mut File,
    path: &Path,
    len: u64,
    keys: &Keyring,
    warnings: &mut Vec<RecoveryWarning>,
) -> Result<Tail, WriterError> {
    let mut window = 256 << 10;
    loop {
        let base = len.saturating_sub(window);
        let buf = read_range(file, path, base, len)?;
        if let Some(tail) = scan_tail(&buf, base, path, keys, warnings)? {
            if len - tail.good_end > MAX_TORN_BYTES {
                return Err(WriterError::TornTooLarge {
                    path: path.to_owned(),
                    bytes: len - tail.good_end,
                });
            }
            return Ok(tail);
        }
        if window >= MAX_WINDOW || len - base > MAX_TORN_BYTES + MAX_WINDOW {
            return Err(WriterError::TailUnreadable {
                path: path.to_owned(),
                detail: format!("no complete entry in the last {} MiB", window >> 20),
            });
        }
        window *= 2;
    }
}

/// `Ok(None)`: the window does not reach back far enough.
fn scan_tail(
    buf: &[u8],
    base: u64,
    path: &Path,
    keys: &Keyring,
    warnings: &mut Vec<RecoveryWarning>,
) -> Result<Option<Tail>, WriterError> {
    let line_start = |end: usize| match buf[..end].iter().rposition(|b| *b == b'\n') {
        Some(i) => Some(i + 1),
        None if base == 0 => Some(0),
        None => None,
    };
    // `end`: exclusive end (newline included) of the region still to examine.
    let mut end = buf.len();
    if buf.last().is_some_and(|b| *b != b'\n') {
        let Some(start) = line_start(end) else {
            return Ok(None);
        };
        // A fragment that is a whole valid entry and only lacks its newline is kept.
        if let Ok(text) = std::str::from_utf8(&buf[start..]) {
            if let LineCheck::Entry(f, SelfStatus::Ok) = check_line(text.trim(), keys) {
                let last = TailEntry {
                    seq: f.seq,
                    hmac: f.hmac.into_owned(),
                    entry_id: f.entry_id.into_owned(),
                };
                return Ok(Some(Tail {
                    good_end: base + buf.len() as u64,
                    needs_newline: true,
                    last: Some(last),
                }));
            }
        }
        end = start;
    }
    while end > 0 {
        let Some(start) = line_start(end - 1) else {
            return Ok(None);
        };
        let text = std::str::from_utf8(&buf[start..end - 1]).map(str::trim);
        let check = match text {
            Ok("") => None,
            Ok(t) => Some(check_line(t, keys)),
            Err(_) => Some(LineCheck::Malformed("not UTF-8".to_owned())),
        };
        match check {
            // Blank lines and unparseable lines after the last entry are torn.
            None | Some(LineCheck::Malformed(_)) => end = start,
            Some(LineCheck::Entry(f, status)) => {
                match status {
                    SelfStatus::Ok => {}
                    SelfStatus::UnknownKey(key_id) => warnings.push(RecoveryWarning::UnverifiedTail {
                        path: path.to_owned(),
                        entry_id: f.entry_id.to_string(),
                        key_id,
                    }),
                    SelfStatus::Mismatch(_) => {
                        return Err(WriterError::TailUnverified {
                            path: path.to_owned(),
                            entry_id: f.entry_id.to_string(),
                            detail: "its hmac does not match: wrong secret or key id, or the entry was altered"
                                .to_owned(),
                        })
                    }
                    SelfStatus::MissingKeyId | SelfStatus::KeyIdNotString => {
                        return Err(WriterError::TailUnverified {
                            path: path.to_owned(),
                            entry_id: f.entry_id.to_string(),
                            detail: "it has no usable _signing_key_id".to_owned(),
                        })
                    }
                }
                let last = TailEntry {
                    seq: f.seq,
                    hmac: f.hmac.into_owned(),
                    entry_id: f.entry_id.into_owned(),
                };
                return Ok(Some(Tail {
                    good_end: base + end as u64,
                    needs_newline: false,
                    last: Some(last),
                }));
            }
        }
    }
    // Reached the start of the window without finding an entry.
    Ok((base == 0).then_some(Tail {
        good_end: 0,
        needs_newline: false,
        last: None,
    }))
}

fn check_head(
    path: &Path,
    keys: &Keyring,
    last: Option<&TailEntry>,
    warnings: &mut Vec<RecoveryWarning>,
) -> Result<(), WriterError> {
    let hp = head_path(path);
    let problem = match read_head(&hp) {
        Ok(None) => return Ok(()),
        Ok(Some(head)) => match head.verify(keys) {
            Err(detail) => Some(detail),
            Ok(()) => head_vs_log(&head, last),
        },
        Err(e) => Some(e.to_string()),
    };
    if let Some(detail) = problem {
        let stale = sibling(&hp, &format!(".stale-{}", now_ns()));
        std::fs::rename(&hp, &stale).map_err(io_err(&hp, "move stale head aside"))?;
        warnings.push(RecoveryWarning::StaleHead {
            head: hp,
            moved_to: stale,
            detail,
        });
    }
    Ok(())
}

fn head_vs_log(head: &Head, last: Option<&TailEntry>) -> Option<String> {
    let log_seq = last.and_then(|l| l.seq).unwrap_or(0);
    if head.seq > log_seq {
        Some(format!(
            "the signed head records seq {} but the log ends at seq {log_seq}: entries {}..={} are missing (lost in a crash with fsync=never, or deleted)",
            head.seq,
            log_seq + 1,
            head.seq
        ))
    } else if head.seq == log_seq && last.is_some_and(|l| l.hmac != head.hmac) {
        Some(format!(
            "the signed head records a different last entry ({}) for seq {}",
            head.entry_id, head.seq
        ))
    } else {
        None
    }
}

/// `path` + `suffix` as a sibling file name.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn read_range(file: &mut File, path: &Path, from: u64, to: u64) -> Result<Vec<u8>, WriterError> {
    let mut buf = vec![0u8; usize::try_from(to - from).unwrap_or(0)];
    file.seek(SeekFrom::Start(from))
        .map_err(io_err(path, "seek"))?;
    file.read_exact(&mut buf).map_err(io_err(path, "read"))?;
    Ok(buf)
}
