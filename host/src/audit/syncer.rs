//! The syncer: a log's second thread. It owns the two slow things a commit
//! used to wait for — the log's fsync under `fsync = batch`, and the signed
//! head — so the writer thread only encodes, writes and acknowledges.
//!
//! Under `batch` an append is acknowledged once its group is written to the
//! file (it survives a crash or `kill -9` of the gate); the syncer fsyncs
//! whatever has been written since its last fsync, at once when the log was
//! quiet and otherwise at most every [`SYNC_EVERY`], so every entry is on disk
//! within about `SYNC_EVERY` plus one fsync of its acknowledgement. Only a
//! power or kernel failure inside that window can lose acknowledged entries;
//! `fsync = "always"` closes it at the cost of one fsync on every response.
//!
//! The head is rewritten from the last *durable* chain position only (so it is
//! never ahead of what is on disk), at most every [`HEAD_EVERY`] while the log
//! grows, once the log has been quiet that long, on every flush, and at close.
//! A failed fsync is reported to the writer, which then refuses every further
//! append (fail closed) instead of acknowledging entries it cannot make durable.
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::entry::now_ns;
use super::head::{write_head, Head};
use super::keys::Keyring;
use super::writer::{io_err, Counters, FsyncPolicy, WriterError};

/// The longest the signed head may lag the durable log while it grows.
pub const HEAD_EVERY: Duration = Duration::from_millis(25);

/// The least time between two batch fsyncs (at most ~100 a second, however
/// many entries are written): each costs the gate's core ~0.2 ms here.
pub const SYNC_EVERY: Duration = Duration::from_millis(10);

/// A chain position: the last entry written.
#[derive(Debug, Clone, Default)]
pub struct Position {
    /// Its `_seq` (0: nothing written yet).
    pub seq: u64,
    /// Its entry id.
    pub entry_id: String,
    /// Its hmac.
    pub hmac: String,
}

/// A flush waiter: resolved once everything written before it is durable and
/// the head names it.
pub type FlushReply = Box<dyn FnOnce(Result<(), WriterError>) + Send>;

#[derive(Default)]
struct Inner {
    written: Position,
    durable: u64,
    head: u64,
    flushes: Vec<FlushReply>,
    stop: bool,
    failed: Option<String>,
}

/// What the syncer thread needs besides the shared state.
pub struct SyncerConfig {
    /// A handle on the log file (a clone of the writer's).
    pub file: File,
    /// The log path (for errors).
    pub path: PathBuf,
    /// The head file.
    pub head_path: PathBuf,
    /// fsync policy.
    pub fsync: FsyncPolicy,
    /// Signs the head.
    pub keyring: Keyring,
    /// Instance id for the head.
    pub instance: String,
    /// fsync / head failure counters.
    pub counters: Arc<Counters>,
}

/// The writer's handle on its syncer.
pub struct Syncer {
    shared: Arc<(Mutex<Inner>, Condvar)>,
    thread: Option<JoinHandle<Result<(), WriterError>>>,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Syncer {
    /// Start the thread. `start` is the log's position at open (already
    /// durable, its head already written by the caller).
    pub fn start(config: SyncerConfig, start: Position) -> Result<Self, WriterError> {
        let inner = Inner {
            durable: start.seq,
            head: start.seq,
            written: start,
            ..Inner::default()
        };
        let shared = Arc::new((Mutex::new(inner), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let path = config.path.clone();
        let thread = std::thread::Builder::new()
            .name("signet-audit-sync".into())
            .spawn(move || run(config, &theirs))
            .map_err(io_err(&path, "start audit syncer thread"))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// A group was written; `pos` is the chain's new end. Wakes the syncer
    /// only when the log was clean: a dirty log already has its fsync timed.
    pub fn written(&self, pos: Position) {
        let (m, cv) = &*self.shared;
        let mut g = lock(m);
        let was_clean = g.written.seq <= g.durable;
        g.written = pos;
        drop(g);
        if was_clean {
            cv.notify_one();
        }
    }

    /// Resolve `reply` once everything written so far is durable and in the head.
    pub fn flush(&self, reply: FlushReply) {
        let (m, cv) = &*self.shared;
        lock(m).flushes.push(reply);
        cv.notify_one();
    }

    /// Why the syncer failed, once it has.
    pub fn failed(&self) -> Option<String> {
        lock(&self.shared.0).failed.clone()
    }

    /// Make everything written durable, write the final head, stop the thread.
    pub fn stop(&mut self) -> Result<(), WriterError> {
        let (m, cv) = &*self.shared;
        lock(m).stop = true;
        cv.notify_one();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(WriterError::Failed(
                "the audit syncer thread panicked".into(),
            )),
            None => Ok(()),
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn run(cfg: SyncerConfig, shared: &(Mutex<Inner>, Condvar)) -> Result<(), WriterError> {
    let (m, cv) = shared;
    let mut last_head = Instant::now();
    let mut last_sync = Instant::now()
        .checked_sub(SYNC_EVERY)
        .unwrap_or_else(Instant::now);
    loop {
        let (pos, flushes, stop, durable, head) = {
            let mut g = lock(m);
            loop {
                if g.stop || !g.flushes.is_empty() {
                    break;
                }
                // After a failed fsync nothing more is retried: the writer
                // refuses appends, and only a flush or stop is answered.
                let dirty = g.failed.is_none() && g.written.seq > g.durable;
                let stale_head = g.failed.is_none() && g.head < g.durable;
                let deadline = if dirty {
                    Some(SYNC_EVERY.saturating_sub(last_sync.elapsed()))
                } else if stale_head {
                    Some(HEAD_EVERY.saturating_sub(last_head.elapsed()))
                } else {
                    None
                };
                g = match deadline {
                    Some(d) if d.is_zero() => break,
                    Some(d) => {
                        cv.wait_timeout(g, d)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0
                    }
                    None => cv.wait(g).unwrap_or_else(PoisonError::into_inner),
                };
            }
            let flushes = std::mem::take(&mut g.flushes);
            (g.written.clone(), flushes, g.stop, g.durable, g.head)
        };
        let urgent = stop || !flushes.is_empty();
        // `always` already fsynced each entry; `never` only fsyncs when asked.
        let needs_fsync = match cfg.fsync {
            FsyncPolicy::Batch => pos.seq > durable || urgent,
            FsyncPolicy::Always | FsyncPolicy::Never => urgent,
        };
        let synced = if needs_fsync {
            last_sync = Instant::now();
            cfg.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            cfg.file.sync_data().map_err(io_err(&cfg.path, "fsync"))
        } else {
            Ok(())
        };
        let mut g = lock(m);
        match &synced {
            Ok(()) => g.durable = g.durable.max(pos.seq),
            Err(e) => {
                g.failed.get_or_insert_with(|| e.to_string());
            }
        }
        let head_due = urgent || last_head.elapsed() >= HEAD_EVERY;
        if synced.is_ok() && head_due && head < pos.seq && g.failed.is_none() {
            drop(g);
            let h = Head::new(
                pos.seq,
                &pos.entry_id,
                &pos.hmac,
                cfg.keyring.active(),
                &cfg.instance,
                now_ns(),
            );
            let durable_head = cfg.fsync != FsyncPolicy::Never || urgent;
            if write_head(&cfg.head_path, &h, durable_head).is_err() {
                cfg.counters.head_failures.fetch_add(1, Ordering::Relaxed);
            }
            last_head = Instant::now();
            g = lock(m);
            g.head = pos.seq;
        }
        let failed = g.failed.clone();
        drop(g);
        let result = match (synced, failed) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(f)) => Err(WriterError::Failed(f)),
            (Ok(()), None) => Ok(()),
        };
        for reply in flushes {
            reply(result.clone());
        }
        if stop {
            return result;
        }
    }
}
