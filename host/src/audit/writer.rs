//! The chain writer: one dedicated OS thread per log, fed through a channel.
//!
//! Callers never block the async reactor: [`AuditWriter::append`] queues the entry
//! and awaits a oneshot that resolves once the entry is written — and durable, per
//! the fsync policy. Async appends made in one turn of the scheduler are handed
//! to the thread together (one wake-up and thread switch per batch, not per
//! entry). The thread does group commit: it drains everything queued
//! (up to `max_group`), signs and chains each entry in order, writes the group with
//! one `write` and acknowledges. `Always` fsyncs after each entry before its ack.
//! `Batch` (the default) acknowledges after the write and leaves the fsync to the
//! log's [`super::syncer`] thread, which fsyncs back to back behind the writer;
//! `Never` leaves it to the OS. The syncer also keeps the signed head current,
//! so neither an fsync nor a head rewrite ever sits between a request and its
//! response under `batch` (see the syncer's docs for the window this opens).
//!
//! A failed write is rolled back (the file is truncated to the last good group) and
//! every entry of the group gets the error; if even the rollback fails, or the
//! syncer's fsync fails, the writer refuses all further appends rather than fork
//! the chain or acknowledge entries it cannot make durable. `close()` (or dropping
//! every handle) writes what is queued, fsyncs, updates the head and unlocks.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::sync::mpsc;

use tokio::sync::oneshot;

use super::canonical::CanonicalError;
use super::entry::{encode_line, now_ns, ChainPos, NewEntry};
use super::head::{head_path, write_head, Head};
use super::keys::Keyring;
use super::recover::open_log;
pub use super::recover::RecoveryWarning;
use super::syncer::{Position, Syncer, SyncerConfig};

pub use super::syncer::HEAD_EVERY;

/// When the writer calls fsync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// After every entry; each ack waits for its own fsync.
    Always,
    /// Acks after the group's write; the syncer thread fsyncs right behind it.
    #[default]
    Batch,
    /// Never (the OS decides); acks after the write. A crash may lose recent entries.
    Never,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Self::Always),
            "batch" => Ok(Self::Batch),
            "never" => Ok(Self::Never),
            _ => Err(format!("fsync must be always, batch or never (got {s:?})")),
        }
    }
}

/// Errors of the writer (opening, recovery, appends).
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriterError {
    /// I/O failure.
    #[error("audit log {path}: {op} failed: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The error.
        source: Arc<std::io::Error>,
    },
    /// Another process holds the log.
    #[error("audit log {path} is locked by another process (another signet gate?). Each gate needs its own log: put {{instance}} in the audit path, e.g. audit-{{instance}}.jsonl")]
    Locked {
        /// The log.
        path: PathBuf,
    },
    /// The log path is a symlink.
    #[error("refusing to write the audit log through a symlink: {path}")]
    Symlink {
        /// The log.
        path: PathBuf,
    },
    /// The last entry does not verify, so the chain cannot safely continue.
    #[error("audit log {path}: the last entry ({entry_id}) does not verify: {detail}. Run `signet audit verify {path}`; start with the right key, or move the log aside to begin a new one")]
    TailUnverified {
        /// The log.
        path: PathBuf,
        /// The entry.
        entry_id: String,
        /// Why.
        detail: String,
    },
    /// Too much unparseable data at the end to discard automatically.
    #[error("audit log {path}: the last {bytes} bytes are not valid entries; refusing to move more than 1 MiB aside automatically. Inspect it with `signet audit verify {path}`")]
    TornTooLarge {
        /// The log.
        path: PathBuf,
        /// Size of the bad tail.
        bytes: u64,
    },
    /// No entry found near the end.
    #[error("audit log {path}: cannot find the last entry ({detail})")]
    TailUnreadable {
        /// The log.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The entry cannot be serialised (e.g. NaN in metadata); nothing was written.
    #[error("audit entry {entry_id} was not written: {source}")]
    Entry {
        /// The entry.
        entry_id: String,
        /// Why.
        source: CanonicalError,
    },
    /// The writer has shut down.
    #[error("the audit writer is closed")]
    Closed,
    /// An earlier failure could not be rolled back; the writer accepts nothing more.
    #[error("the audit writer stopped after an unrecoverable error: {0}")]
    Failed(String),
}

/// Build an I/O error mapper for `path`.
pub fn io_err(path: &Path, op: &'static str) -> impl Fn(std::io::Error) -> WriterError {
    let path = path.to_owned();
    move |e| WriterError::Io {
        path: path.clone(),
        op,
        source: Arc::new(e),
    }
}

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Log path (already expanded, see [`expand_instance`]).
    pub path: PathBuf,
    /// Active key signs; retired keys let recovery verify the last entry.
    pub keyring: Keyring,
    /// fsync policy.
    pub fsync: FsyncPolicy,
    /// Instance id written to `_instance` and the head.
    pub instance: String,
    /// Most entries per group commit.
    pub max_group: usize,
}

impl WriterConfig {
    /// Defaults: `batch` fsync, groups of up to 4096 entries.
    pub fn new(path: impl Into<PathBuf>, keyring: Keyring, instance: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            keyring,
            fsync: FsyncPolicy::Batch,
            instance: instance.into(),
            max_group: 4096,
        }
    }
}

/// Replace `{instance}` in a configured log path.
pub fn expand_instance(path: &Path, instance: &str) -> PathBuf {
    match path.to_str() {
        Some(s) if s.contains("{instance}") => PathBuf::from(s.replace("{instance}", instance)),
        _ => path.to_owned(),
    }
}

/// A stable default instance id: the host name (from the kernel or `$HOSTNAME`),
/// reduced to `[A-Za-z0-9_.-]`, or `local`.
pub fn default_instance() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let id: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect();
    if id.is_empty() {
        "local".to_owned()
    } else {
        id
    }
}

/// Where a written entry landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Its `_seq`.
    pub seq: u64,
    /// Its hmac.
    pub hmac: String,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Entries written.
    pub appended: u64,
    /// Entries that failed (including fire-and-forget ones nobody awaited).
    pub failed: u64,
    /// Group commits.
    pub groups: u64,
    /// fsync calls on the log.
    pub fsyncs: u64,
    /// Head rewrites that failed.
    pub head_failures: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    appended: AtomicU64,
    failed: AtomicU64,
    groups: AtomicU64,
    pub(super) fsyncs: AtomicU64,
    pub(super) head_failures: AtomicU64,
}

enum Reply<T> {
    Async(oneshot::Sender<T>),
    Blocking(std::sync::mpsc::SyncSender<T>),
    None,
}

impl<T> Reply<T> {
    fn send(self, value: T) {
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(value);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(value);
            }
            Reply::None => {}
        }
    }
}

enum Command {
    Append(Box<NewEntry>, Reply<Result<Appended, WriterError>>),
    Flush(Reply<Result<(), WriterError>>),
    Close(Reply<Result<(), WriterError>>),
}

/// What travels to the thread: one command, or the appends gathered on the
/// async side (see [`AuditWriter::append`]), in order.
enum Msg {
    One(Command),
    Batch(Vec<Command>),
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Msg>,
    /// Async appends waiting to be handed to the thread together. Every send
    /// to the thread happens under this lock, after what is gathered here,
    /// so the thread sees commands in the order they were made.
    gathered: Arc<std::sync::Mutex<Vec<Command>>>,
    path: Arc<PathBuf>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditWriter({})", self.path.display())
    }
}

impl AuditWriter {
    /// Open (create, lock, recover) the log and start the writer thread. Blocking:
    /// call it at startup or from `spawn_blocking`. Returns what recovery did.
    pub fn open(config: WriterConfig) -> Result<(Self, Vec<RecoveryWarning>), WriterError> {
        let opened = open_log(&config.path, &config.keyring)?;
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel();
        let last = opened.last.clone();
        let seq = last.as_ref().and_then(|l| l.seq).unwrap_or(0);
        let start = Position {
            seq,
            entry_id: last
                .as_ref()
                .map(|l| l.entry_id.clone())
                .unwrap_or_default(),
            hmac: last.map(|l| l.hmac).unwrap_or_default(),
        };
        let head_path = head_path(&config.path);
        if seq > 0 {
            initial_head(&config, &head_path, &start, &counters);
        }
        let syncer = Syncer::start(
            SyncerConfig {
                file: opened
                    .file
                    .try_clone()
                    .map_err(io_err(&config.path, "clone the log handle"))?,
                path: config.path.clone(),
                head_path,
                fsync: config.fsync,
                keyring: config.keyring.clone(),
                instance: config.instance.clone(),
                counters: Arc::clone(&counters),
            },
            start.clone(),
        )?;
        let state = State {
            file: opened.file,
            len: opened.len,
            seq,
            prev_hmac: start.hmac,
            last_id: start.entry_id,
            config,
            counters: Arc::clone(&counters),
            failed: None,
            syncer,
        };
        let path = Arc::new(state.config.path.clone());
        std::thread::Builder::new()
            .name("signet-audit-writer".into())
            .spawn(move || state.run(rx))
            .map_err(io_err(&path, "start writer thread"))?;
        Ok((
            Self {
                tx,
                gathered: Arc::default(),
                path,
                counters,
            },
            opened.warnings,
        ))
    }

    /// Queue `entry` and wait until it is written (and fsynced, per policy).
    /// Never blocks the reactor. Cancel-safe: once called, the entry is written
    /// even if this future is dropped.
    ///
    /// Appends made in the same turn of the async scheduler reach the writer
    /// thread as one batch, so it is woken (and switched to) once per batch
    /// rather than once per entry: the first append of a batch yields once,
    /// letting the other ready tasks add theirs, then hands them all over.
    pub async fn append(&self, entry: NewEntry) -> Result<Appended, WriterError> {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut gathered = self.gathered();
            gathered.push(Command::Append(Box::new(entry), Reply::Async(tx)));
            gathered.len() == 1
        };
        if first {
            // Dropped after the yield, or with this future: either way the
            // batch is handed over.
            let _handover = Handover(self);
            tokio::task::yield_now().await;
        }
        rx.await.unwrap_or(Err(WriterError::Closed))
    }

    /// Queue `entry` without waiting. Failures only show in [`AuditWriter::stats`].
    pub fn submit(&self, entry: NewEntry) -> Result<(), WriterError> {
        self.send(Command::Append(Box::new(entry), Reply::None))
    }

    /// [`AuditWriter::append`] for non-async code. Blocks the calling thread.
    pub fn append_blocking(&self, entry: NewEntry) -> Result<Appended, WriterError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.send(Command::Append(Box::new(entry), Reply::Blocking(tx)))?;
        rx.recv().unwrap_or(Err(WriterError::Closed))
    }

    /// Resolve once everything queued before this call is written and fsynced.
    pub async fn flush(&self) -> Result<(), WriterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Flush(Reply::Async(tx)))?;
        rx.await.unwrap_or(Err(WriterError::Closed))
    }

    /// Write everything queued, fsync, update the head, unlock and stop the thread.
    /// Resolves after the final fsync. Later appends fail with [`WriterError::Closed`].
    pub async fn close(&self) -> Result<(), WriterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Close(Reply::Async(tx)))?;
        rx.await.unwrap_or(Err(WriterError::Closed))
    }

    /// [`AuditWriter::close`] for non-async code.
    pub fn close_blocking(&self) -> Result<(), WriterError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.send(Command::Close(Reply::Blocking(tx)))?;
        rx.recv().unwrap_or(Err(WriterError::Closed))
    }

    /// The log path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters so far.
    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            appended: c.appended.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            groups: c.groups.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            head_failures: c.head_failures.load(Ordering::Relaxed),
        }
    }

    fn gathered(&self) -> std::sync::MutexGuard<'_, Vec<Command>> {
        // Nothing panics while holding it; a poisoned lock's data is intact.
        self.gathered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Send `cmd` after everything gathered so far.
    fn send(&self, cmd: Command) -> Result<(), WriterError> {
        let mut gathered = self.gathered();
        self.hand_over(&mut gathered);
        self.tx.send(Msg::One(cmd)).map_err(|_| WriterError::Closed)
    }

    /// Send what is gathered as one batch. Should the thread be gone, the
    /// dropped replies make each waiting append fail with `Closed`.
    fn hand_over(&self, gathered: &mut Vec<Command>) {
        if !gathered.is_empty() {
            let _ = self.tx.send(Msg::Batch(std::mem::take(gathered)));
        }
    }
}

/// Hands the gathered appends to the thread when dropped.
struct Handover<'a>(&'a AuditWriter);

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        let mut gathered = self.0.gathered();
        self.0.hand_over(&mut gathered);
    }
}

struct State {
    config: WriterConfig,
    file: File,
    len: u64,
    seq: u64,
    prev_hmac: String,
    last_id: String,
    counters: Arc<Counters>,
    failed: Option<String>,
    syncer: Syncer,
}

/// The head written when a writer opens a non-empty log.
fn initial_head(config: &WriterConfig, path: &Path, at: &Position, counters: &Counters) {
    let head = Head::new(
        at.seq,
        &at.entry_id,
        &at.hmac,
        config.keyring.active(),
        &config.instance,
        now_ns(),
    );
    if write_head(path, &head, config.fsync != FsyncPolicy::Never).is_err() {
        counters.head_failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// Add what `msg` carries to `group`.
fn add(group: &mut Vec<Command>, msg: Msg) {
    match msg {
        Msg::One(cmd) => group.push(cmd),
        Msg::Batch(cmds) => group.extend(cmds),
    }
}

impl State {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut group = Vec::new();
        loop {
            let Ok(first) = rx.recv() else {
                // Every handle dropped: make what was written durable and stop.
                let _ = self.syncer.stop();
                return;
            };
            add(&mut group, first);
            while group.len() < self.config.max_group.max(1) {
                match rx.try_recv() {
                    Ok(cmd) => add(&mut group, cmd),
                    Err(_) => break,
                }
            }
            if self.commit(&mut group) {
                return;
            }
        }
    }

    /// Commit one group. Returns true when the writer must stop.
    fn commit(&mut self, group: &mut Vec<Command>) -> bool {
        if self.failed.is_none() {
            self.failed = self.syncer.failed();
        }
        let (seq0, prev0, id0, len0) = (
            self.seq,
            self.prev_hmac.clone(),
            self.last_id.clone(),
            self.len,
        );
        let mut buf = Vec::new();
        let mut acks = Vec::new();
        let mut waiters = Vec::new();
        let mut close = None;
        for cmd in group.drain(..) {
            match cmd {
                Command::Append(_, reply) if close.is_some() => {
                    reply.send(Err(WriterError::Closed))
                }
                Command::Append(entry, reply) => {
                    if let Some(reason) = &self.failed {
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        reply.send(Err(WriterError::Failed(reason.clone())));
                        continue;
                    }
                    let before = (
                        self.seq,
                        self.prev_hmac.clone(),
                        self.last_id.clone(),
                        self.len,
                    );
                    let key = self.config.keyring.active();
                    let pos = ChainPos {
                        prev_hmac: &self.prev_hmac,
                        seq: self.seq + 1,
                        key_id: key.id(),
                        instance: &self.config.instance,
                    };
                    match encode_line(&entry, &pos, key.secret()) {
                        Ok((line, hmac)) => {
                            self.seq += 1;
                            self.prev_hmac.clone_from(&hmac);
                            self.last_id = entry.entry_id.to_string();
                            buf.extend_from_slice(&line);
                            let appended = Appended {
                                seq: self.seq,
                                hmac,
                            };
                            if self.config.fsync == FsyncPolicy::Always {
                                let result = self.write_group(&mut buf, true, before);
                                self.settle(vec![(reply, appended)], result);
                            } else {
                                acks.push((reply, appended));
                            }
                        }
                        Err(source) => {
                            self.counters.failed.fetch_add(1, Ordering::Relaxed);
                            reply.send(Err(WriterError::Entry {
                                entry_id: entry.entry_id.to_string(),
                                source,
                            }));
                        }
                    }
                }
                Command::Flush(reply) => waiters.push(reply),
                Command::Close(reply) => close = Some(reply),
            }
        }
        // Counted before the acks go out, so a caller that has its ack sees
        // its group in the stats.
        if !acks.is_empty() || self.seq != seq0 {
            self.counters.groups.fetch_add(1, Ordering::Relaxed);
        }
        if !acks.is_empty() {
            let result = self.write_group(&mut buf, false, (seq0, prev0, id0, len0));
            self.settle(acks, result);
        }
        if self.seq != seq0 {
            self.syncer.written(Position {
                seq: self.seq,
                entry_id: self.last_id.clone(),
                hmac: self.prev_hmac.clone(),
            });
        }
        for w in waiters {
            // A flush also brings the head up to date.
            self.syncer.flush(Box::new(move |r| w.send(r)));
        }
        match close {
            None => false,
            Some(reply) => {
                let synced = self.syncer.stop();
                let _ = self.file.unlock();
                reply.send(synced);
                true
            }
        }
    }

    /// Write `buf` (and fsync if `durable`); on failure roll back to `before`.
    fn write_group(
        &mut self,
        buf: &mut Vec<u8>,
        durable: bool,
        before: (u64, String, String, u64),
    ) -> Result<(), WriterError> {
        let path = self.config.path.clone();
        let mut result = self.file.write_all(buf).map_err(io_err(&path, "write"));
        if result.is_ok() && durable {
            result = self.sync();
        }
        match &result {
            Ok(()) => self.len += buf.len() as u64,
            Err(e) => {
                (self.seq, self.prev_hmac, self.last_id) = (before.0, before.1, before.2);
                if let Err(rollback) = self
                    .file
                    .set_len(before.3)
                    .and_then(|()| self.file.sync_all())
                {
                    self.failed = Some(format!(
                        "{e}; rolling back to {} bytes also failed: {rollback}",
                        before.3
                    ));
                }
            }
        }
        buf.clear();
        result
    }

    fn settle(
        &self,
        acks: Vec<(Reply<Result<Appended, WriterError>>, Appended)>,
        result: Result<(), WriterError>,
    ) {
        let counter = if result.is_ok() {
            &self.counters.appended
        } else {
            &self.counters.failed
        };
        counter.fetch_add(acks.len() as u64, Ordering::Relaxed);
        for (reply, appended) in acks {
            reply.send(result.clone().map(|()| appended));
        }
    }

    fn sync(&self) -> Result<(), WriterError> {
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.file
            .sync_data()
            .map_err(io_err(&self.config.path, "fsync"))
    }
}
