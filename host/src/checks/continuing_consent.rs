//! `continuing_consent` (INSPECTION, priority 30): authority granted at
//! admission is re-checked while the response streams; when it is withdrawn
//! the stream is stopped.
//!
//! Revalidates on chunk 1 and every `every_n_chunks` (5) chunks after it
//! (chunks 1, 6, 11, … with 5), against one or both of:
//! - `revocation_file`: one owner per line (`human:alice`, or a bare `alice`
//!   for every owner type with that id; `#` starts a comment), normalised
//!   like owner headers; re-read when its modification time or size changes,
//!   checked at most every `cache_ms`. Use an absolute path (a relative one
//!   resolves against the gate's working directory). It must be readable at
//!   startup.
//! - `revalidate_url`: asked through the [`Revalidator`] the gate installs at
//!   startup (HTTP lives in `upstream/`); `revalidate_method` `"POST"`
//!   (default: JSON `{"owner", "owner_type", "owner_id", "correlation_id"}`)
//!   or `"GET"` (`?owner=<type:id>`). A 2xx answer with `{"valid": true}` means
//!   still authorised. Answers are cached per owner for `cache_ms` (1000).
//!
//! - the state backend (`state_revocations`, default true): owners revoked
//!   with `signet consent revoke OWNER` (which writes to the shared Redis
//!   backend, so every replica sees it at once). With the memory backend
//!   nothing outside the gate process can write revocations; use a file or
//!   URL there.
//!
//! Fails closed: an unreadable file, a revalidator error, a non-2xx or
//! malformed answer, or no revalidator installed blocks the stream; a state
//! backend failure blocks it with `state_unavailable`. A request with no
//! resolved owner has no authority to re-check and passes.
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::owner_resolution::canonical_principal;
use super::settings::Settings;
use super::{
    Check, Factory, Hook, Hooks, Owner, OwnerType, Request, ResponseSoFar, Scratch, Source, Stage,
    Verdict,
};
use crate::state::{self, StateBackend, StateError, StateOp};

const NAME: &str = "continuing_consent";
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
const MAX_CACHED_OWNERS: usize = 10_000;

/// The future of one revalidation: `Ok(true)` still authorised, `Ok(false)`
/// withdrawn, `Err` could not tell (the check fails closed).
pub type RevalidateFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;

/// One revalidation request.
#[derive(Debug, Clone, Copy)]
pub struct RevalidateCall<'a> {
    /// `revalidate_url`.
    pub url: &'a str,
    /// `"GET"` or `"POST"`.
    pub method: &'static str,
    /// The owner whose authority is re-checked (never unresolved).
    pub owner: &'a Owner,
    /// The request's correlation id.
    pub correlation_id: &'a str,
}

/// Asks an authority service whether an owner may still receive output.
/// Implemented over HTTP by the gate (`upstream/`) and installed with
/// [`install_revalidator`].
pub trait Revalidator: Send + Sync + 'static {
    /// Called by `continuing_consent` on each chunk it revalidates (when its
    /// per-owner cache has no fresh answer), under the check's timeout. GET
    /// sends `?owner=<type:id>`; POST sends JSON `{"owner", "owner_type",
    /// "owner_id", "correlation_id"}`. Answer `Ok(true)` only for a 2xx
    /// response whose JSON body has `"valid": true`; `Ok(false)` for a 2xx
    /// with `"valid": false`; `Err` for anything else.
    fn revalidate<'a>(&'a self, call: RevalidateCall<'a>) -> RevalidateFuture<'a>;
}

static INSTALLED: RwLock<Option<Arc<dyn Revalidator>>> = RwLock::new(None);

/// Install the process-wide HTTP revalidator (the gate does this at startup).
pub fn install_revalidator(r: Arc<dyn Revalidator>) {
    if let Ok(mut g) = INSTALLED.write() {
        *g = Some(r);
    }
}

fn installed() -> Option<Arc<dyn Revalidator>> {
    INSTALLED.read().ok().and_then(|g| g.clone())
}

#[derive(Debug, Default)]
struct FileState {
    checked: Option<Instant>,
    stamp: Option<Stamp>,
    owners: Arc<HashSet<String>>,
}

struct Inner {
    url: Option<String>,
    method: &'static str,
    every: u64,
    cache: Duration,
    file: Option<PathBuf>,
    file_state: Mutex<FileState>,
    revalidator: Option<Arc<dyn Revalidator>>,
    url_cache: Mutex<HashMap<String, (Instant, bool)>>,
    /// Revocations in the state backend (`None`: `state_revocations = false`).
    state: Option<Arc<dyn StateBackend>>,
}

struct ContinuingConsent {
    inner: Arc<Inner>,
}

pub(super) fn factory() -> Factory {
    Factory {
        kind: NAME.into(),
        source: Source::Builtin,
        stage: Stage::Inspection,
        priority: 30,
        hooks: Hooks::INSPECT_CHUNK,
        description:
            "re-checks the owner's authority every N chunks (revocation file or HTTP), fails closed"
                .into(),
        build: Arc::new(|cfg| {
            build_with(cfg, None, state::for_check()).map(|c| Arc::new(c) as Arc<dyn Check>)
        }),
    }
}

/// An owner as revocations name it: `type:id` (`human:alice`), or `*:id`
/// for a bare id (every owner type), normalised like owner headers; `None`
/// for a blank line or an invalid id. `#` starts a comment.
pub fn revocation_entry(line: &str) -> Option<String> {
    entry(line)
}

/// One revocation-list line as a set entry (`type:id`, or `*:id` for a bare id).
fn entry(line: &str) -> Option<String> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty() {
        return None;
    }
    for prefix in ["human:", "agent:", "policy:"] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return canonical_principal(rest)
                .ok()
                .map(|id| format!("{prefix}{id}"));
        }
    }
    canonical_principal(line).ok().map(|id| format!("*:{id}"))
}

/// Modification time and size of the revocation file.
type Stamp = (SystemTime, u64);

/// Read the file if its stamp differs from `known`; `Ok(None)`: unchanged.
fn load(path: &PathBuf, known: Option<Stamp>) -> Result<Option<(Stamp, HashSet<String>)>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{} is larger than 16 MiB", path.display()));
    }
    let stamp = (
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        meta.len(),
    );
    if known == Some(stamp) {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Some((stamp, text.lines().filter_map(entry).collect())))
}

fn build_with(
    cfg: &serde_json::Value,
    revalidator: Option<Arc<dyn Revalidator>>,
    state: Arc<dyn StateBackend>,
) -> Result<ContinuingConsent, String> {
    let s = Settings::new(
        NAME,
        cfg,
        &[
            "revalidate_url",
            "revalidate_method",
            "every_n_chunks",
            "cache_ms",
            "revocation_file",
            "state_revocations",
        ],
    )?;
    let revocations = s.bool("state_revocations", true)?.then_some(state);
    let url = s.opt_str("revalidate_url")?.map(str::to_string);
    if let Some(u) = &url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(s.err(
                "revalidate_url",
                format!("{u:?} is not an http(s) URL"),
                "write revalidate_url = \"https://authz.example/consent\"",
            ));
        }
    }
    let file = s.opt_str("revocation_file")?.map(PathBuf::from);
    if url.is_none() && file.is_none() && revocations.is_none() {
        return Err(s.err(
            "revalidate_url",
            "neither revalidate_url nor revocation_file is set and state_revocations is false, so there is nothing to revalidate against",
            "set revalidate_url = \"https://…\" or revocation_file = \"/etc/signet/revoked.txt\", or state_revocations = true",
        ));
    }
    let mut state = FileState::default();
    if let Some(path) = &file {
        let Some((stamp, owners)) = load(path, None).map_err(|e| {
            s.err(
                "revocation_file",
                e,
                "create the file (one owner per line, may be empty) or correct the path",
            )
        })?
        else {
            return Err(s.err("revocation_file", "could not be read", "check the path"));
        };
        state = FileState {
            checked: Some(Instant::now()),
            stamp: Some(stamp),
            owners: Arc::new(owners),
        };
    }
    Ok(ContinuingConsent {
        inner: Arc::new(Inner {
            url,
            method: s.choice("revalidate_method", "POST", &["GET", "POST"])?,
            every: s.uint("every_n_chunks", 5, 1, 1_000_000)?,
            cache: Duration::from_millis(s.uint("cache_ms", 1000, 0, 3_600_000)?),
            file,
            file_state: Mutex::new(state),
            revalidator,
            url_cache: Mutex::new(HashMap::new()),
            state: revocations,
        }),
    })
}

fn revoked_in(owners: &HashSet<String>, owner: &Owner) -> bool {
    owners.contains(&owner.qualified()) || owners.contains(&format!("*:{}", owner.id))
}

fn withdrawn(owner: &Owner, source: &str, why: String) -> Verdict {
    Verdict::block(why)
        .with("owner", owner.qualified().into())
        .with("source", source.into())
}

fn failed(source: &str, err: String) -> Verdict {
    Verdict::block(format!(
        "consent could not be revalidated ({source}), failing closed: {err}"
    ))
    .with("source", source.into())
    .with("error", err.into())
}

impl Inner {
    fn fresh(&self, at: Option<Instant>) -> bool {
        at.is_some_and(|t| t.elapsed() < self.cache)
    }

    /// The revocation set if it was checked within `cache_ms`.
    fn cached_file(&self) -> Option<Arc<HashSet<String>>> {
        let g = self.file_state.lock().ok()?;
        self.fresh(g.checked).then(|| Arc::clone(&g.owners))
    }

    fn cached_url(&self, owner: &Owner) -> Option<bool> {
        let g = self.url_cache.lock().ok()?;
        g.get(&owner.qualified())
            .filter(|(t, _)| t.elapsed() < self.cache)
            .map(|(_, ok)| *ok)
    }

    /// Decide from caches alone, if they are fresh.
    fn quick(&self, owner: &Owner) -> Option<Verdict> {
        if self.file.is_some() {
            let owners = self.cached_file()?;
            if revoked_in(&owners, owner) {
                return Some(withdrawn(
                    owner,
                    "revocation_file",
                    format!(
                        "consent withdrawn: {} is on the revocation list",
                        owner.qualified()
                    ),
                ));
            }
        }
        if self.url.is_some() && !self.cached_url(owner)? {
            return Some(withdrawn(
                owner,
                "revalidate_url",
                format!(
                    "consent withdrawn: {} is no longer authorised",
                    owner.qualified()
                ),
            ));
        }
        Some(Verdict::allow())
    }

    async fn file_owners(&self) -> Result<Arc<HashSet<String>>, String> {
        if let Some(o) = self.cached_file() {
            return Ok(o);
        }
        let Some(path) = self.file.clone() else {
            return Ok(Arc::default());
        };
        let known = self
            .file_state
            .lock()
            .map_err(|_| "lock poisoned".to_string())?
            .stamp;
        let loaded = tokio::task::spawn_blocking(move || load(&path, known))
            .await
            .map_err(|e| format!("file task failed: {e}"))??;
        let mut g = self
            .file_state
            .lock()
            .map_err(|_| "lock poisoned".to_string())?;
        if let Some((stamp, owners)) = loaded {
            g.stamp = Some(stamp);
            g.owners = Arc::new(owners);
        }
        g.checked = Some(Instant::now());
        Ok(Arc::clone(&g.owners))
    }

    async fn revalidate(&self, owner: Owner, correlation_id: String) -> Verdict {
        if self.file.is_some() {
            match self.file_owners().await {
                Ok(owners) if revoked_in(&owners, &owner) => {
                    return withdrawn(
                        &owner,
                        "revocation_file",
                        format!(
                            "consent withdrawn: {} is on the revocation list",
                            owner.qualified()
                        ),
                    )
                }
                Ok(_) => {}
                Err(e) => return failed("revocation_file", e),
            }
        }
        let Some(url) = &self.url else {
            return Verdict::allow();
        };
        let ok = match self.cached_url(&owner) {
            Some(ok) => ok,
            None => {
                let Some(r) = self.revalidator.clone().or_else(installed) else {
                    return failed(
                        "revalidate_url",
                        "no HTTP revalidator is installed in this gate (use revocation_file, or a build that wires one)".into(),
                    );
                };
                let call = RevalidateCall {
                    url,
                    method: self.method,
                    owner: &owner,
                    correlation_id: &correlation_id,
                };
                match r.revalidate(call).await {
                    Ok(ok) => {
                        if let Ok(mut g) = self.url_cache.lock() {
                            if g.len() >= MAX_CACHED_OWNERS {
                                g.clear();
                            }
                            g.insert(owner.qualified(), (Instant::now(), ok));
                        }
                        ok
                    }
                    Err(e) => return failed("revalidate_url", e),
                }
            }
        };
        if ok {
            Verdict::allow()
        } else {
            withdrawn(
                &owner,
                "revalidate_url",
                format!(
                    "consent withdrawn: {} is no longer authorised",
                    owner.qualified()
                ),
            )
        }
    }
}

/// The state backend's answer: `Some` verdict when it decides (revoked, or
/// failed), `None` to go on with the file and URL.
fn from_state(owner: &Owner, r: Result<bool, StateError>) -> Option<Verdict> {
    match r {
        Ok(false) => None,
        Ok(true) => Some(withdrawn(
            owner,
            "state",
            format!("consent withdrawn: {} is revoked", owner.qualified()),
        )),
        Err(e) => Some(Verdict::unavailable(e.to_string()).with("source", "state".into())),
    }
}

impl Check for ContinuingConsent {
    fn hooks(&self) -> Hooks {
        Hooks::INSPECT_CHUNK
    }

    fn inspect_chunk<'a>(
        &'a self,
        req: &'a Arc<Request>,
        resp: &'a ResponseSoFar,
        _scratch: &'a mut Scratch,
    ) -> Hook<'a> {
        let due = resp
            .chunk_index
            .checked_sub(1)
            .is_some_and(|i| i % self.inner.every == 0);
        if !due || req.owner.kind == OwnerType::Unresolved {
            return Hook::allow();
        }
        let chunk = resp.chunk_index;
        let owner = &req.owner;
        let mut pending_state = None;
        if let Some(state) = &self.inner.state {
            let names = vec![owner.qualified(), format!("*:{}", owner.id)];
            match state.owner_revoked(names) {
                StateOp::Ready(r) => {
                    if let Some(v) = from_state(owner, r) {
                        return Hook::Ready(Ok(v.with("chunk_index", chunk.into())));
                    }
                }
                StateOp::Pending(f) => pending_state = Some(f),
            }
        }
        if pending_state.is_none() {
            if let Some(v) = self.inner.quick(owner) {
                return Hook::Ready(Ok(v.with("chunk_index", chunk.into())));
            }
        }
        let (owner, correlation_id) = (req.owner.clone(), req.correlation_id.clone());
        Hook::Pending(Box::pin(async move {
            if let Some(f) = pending_state {
                if let Some(v) = from_state(&owner, f.await) {
                    return Ok(v.with("chunk_index", chunk.into()));
                }
            }
            let v = match self.inner.quick(&owner) {
                Some(v) => v,
                None => self.inner.revalidate(owner, correlation_id).await,
            };
            Ok(v.with("chunk_index", chunk.into()))
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;
    use crate::checks::owner_resolution::tests::req;

    struct Fake {
        answer: Mutex<Result<bool, String>>,
        calls: AtomicUsize,
    }

    impl Revalidator for Fake {
        fn revalidate<'a>(&'a self, call: RevalidateCall<'a>) -> RevalidateFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            assert!(!call.url.is_empty() && call.owner.kind != OwnerType::Unresolved);
            let a = self.answer.lock().unwrap().clone();
            Box::pin(async move { a })
        }
    }

    fn fake(answer: Result<bool, String>) -> Arc<Fake> {
        Arc::new(Fake {
            answer: Mutex::new(answer),
            calls: AtomicUsize::new(0),
        })
    }

    fn build(
        cfg: &serde_json::Value,
        revalidator: Option<Arc<dyn Revalidator>>,
    ) -> Result<ContinuingConsent, String> {
        build_with(cfg, revalidator, Arc::new(crate::state::MemoryState::new()))
    }

    fn alice() -> Arc<Request> {
        let mut r = Request::clone(&req(&[]));
        r.owner = Owner {
            kind: OwnerType::Human,
            id: "alice".into(),
        };
        Arc::new(r)
    }

    fn chunk(c: &ContinuingConsent, r: &Arc<Request>, index: u64) -> Verdict {
        let resp = ResponseSoFar {
            accumulated: Arc::new("x".into()),
            chunk_index: index,
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut scratch: Scratch = None;
        let v = match c.inspect_chunk(r, &resp, &mut scratch) {
            Hook::Ready(r) => r.unwrap(),
            Hook::Pending(f) => rt.block_on(f).unwrap(),
        };
        v
    }

    #[test]
    fn revalidates_every_n_chunks_and_stops_when_withdrawn() {
        let f = fake(Ok(true));
        let c = build(
            &json!({"revalidate_url": "https://authz/x", "every_n_chunks": 3, "cache_ms": 0}),
            Some(f.clone()),
        )
        .unwrap();
        let r = alice();
        for i in 1..=7 {
            assert!(chunk(&c, &r, i).is_allow());
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 3, "chunks 1, 4 and 7");
        *f.answer.lock().unwrap() = Ok(false);
        assert!(chunk(&c, &r, 8).is_allow(), "not due");
        let v = chunk(&c, &r, 10);
        assert!(!v.is_allow());
        assert_eq!(v.metadata["chunk_index"], 10);
        assert_eq!(v.metadata["source"], "revalidate_url");
    }

    #[test]
    fn errors_and_missing_revalidator_fail_closed() {
        let c = build(
            &json!({"revalidate_url": "https://authz/x"}),
            Some(fake(Err("HTTP 500".into()))),
        )
        .unwrap();
        let v = chunk(&c, &alice(), 1);
        assert!(
            !v.is_allow() && v.reason.contains("failing closed"),
            "{}",
            v.reason
        );
        let none = build(&json!({"revalidate_url": "https://authz/x"}), None).unwrap();
        assert!(!chunk(&none, &alice(), 1).is_allow());
        // No owner: nothing to revalidate.
        assert!(chunk(&none, &req(&[]), 1).is_allow());
    }

    #[test]
    fn answers_are_cached_for_cache_ms() {
        let f = fake(Ok(true));
        let c = build(
            &json!({"revalidate_url": "http://authz/x", "every_n_chunks": 1, "cache_ms": 60000}),
            Some(f.clone()),
        )
        .unwrap();
        for i in 1..=5 {
            assert!(chunk(&c, &alice(), i).is_allow());
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn revocation_file_is_reread_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.txt");
        std::fs::write(&path, "# revoked owners\nagent:bot\n").unwrap();
        let c = build(
            &json!({"revocation_file": path.to_str().unwrap(), "every_n_chunks": 1, "cache_ms": 0}),
            None,
        )
        .unwrap();
        let r = alice();
        assert!(chunk(&c, &r, 1).is_allow());
        // Longer content: the size changes even where mtime granularity is coarse.
        std::fs::write(
            &path,
            "# revoked owners\nagent:bot\nhuman:\u{0430}lice  # cyrillic a\n",
        )
        .unwrap();
        let v = chunk(&c, &r, 2);
        assert!(!v.is_allow());
        assert_eq!(v.metadata["source"], "revocation_file");
        std::fs::write(&path, "alice\n").unwrap();
        assert!(
            !chunk(&c, &r, 3).is_allow(),
            "a bare id revokes every owner type"
        );
        std::fs::write(&path, "").unwrap();
        assert!(chunk(&c, &r, 4).is_allow());
        std::fs::remove_file(&path).unwrap();
        let v = chunk(&c, &r, 5);
        assert!(
            !v.is_allow() && v.reason.contains("failing closed"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn revocations_in_the_state_backend_stop_the_stream() {
        use crate::state::{MemoryState, StateBackend};
        let shared = Arc::new(MemoryState::new());
        let c = build_with(&json!({"every_n_chunks": 1}), None, shared.clone()).unwrap();
        let r = alice();
        assert!(chunk(&c, &r, 1).is_allow(), "nothing revoked");
        // What `signet consent revoke human:alice` writes.
        let revoke = |who: &str| match shared.revoke_owner(who.into(), 0) {
            StateOp::Ready(r) => r.unwrap(),
            StateOp::Pending(_) => panic!("memory answers inline"),
        };
        revoke("human:alice");
        let v = chunk(&c, &r, 2);
        assert!(!v.is_allow() && v.reason.contains("revoked"), "{v:?}");
        assert_eq!(v.metadata["source"], "state");
        assert_eq!(v.metadata["chunk_index"], 2);
        drop(shared.restore_owner("human:alice".into()));
        assert!(chunk(&c, &r, 3).is_allow());
        revoke(&revocation_entry("\u{0430}lice").unwrap());
        assert!(
            !chunk(&c, &r, 4).is_allow(),
            "a bare id revokes every owner type"
        );
        // Switched off: the backend is not asked.
        let off = build_with(
            &json!({"state_revocations": false, "revalidate_url": "http://authz/x"}),
            Some(fake(Ok(true))),
            shared,
        )
        .unwrap();
        assert!(chunk(&off, &r, 1).is_allow());
    }

    #[test]
    fn a_state_failure_fails_closed_with_state_unavailable() {
        let f = fake(Ok(true));
        let c = build_with(
            &json!({"revalidate_url": "http://authz/x", "every_n_chunks": 1}),
            Some(f.clone()),
            Arc::new(crate::state::fake::DownState::default()),
        )
        .unwrap();
        let v = chunk(&c, &alice(), 1);
        assert_eq!(v.reason, "state_unavailable");
        assert!(v.metadata["state_error"]
            .as_str()
            .unwrap()
            .contains("connection refused"));
        assert_eq!(f.calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn config_errors() {
        for (cfg, key) in [
            (json!({"state_revocations": false}), "revalidate_url"),
            (json!({"state_revocations": "yes"}), "state_revocations"),
            (json!({"revalidate_url": "ftp://x"}), "revalidate_url"),
            (
                json!({"revalidate_url": "http://x", "every_n_chunks": 0}),
                "every_n_chunks",
            ),
            (
                json!({"revalidate_url": "http://x", "revalidate_method": "PUT"}),
                "revalidate_method",
            ),
            (
                json!({"revocation_file": "/nonexistent/signet/revoked.txt"}),
                "revocation_file",
            ),
            (json!({"revalidate_url": "http://x", "every": 2}), "every"),
        ] {
            let e = build(&cfg, None).err().unwrap();
            assert!(
                e.contains(NAME) && e.contains(key) && e.contains("fix"),
                "{key}: {e}"
            );
        }
    }

    #[test]
    fn compliance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.txt");
        std::fs::write(&path, "human:x\n\u{202E}\n\0\n").unwrap();
        let cfgs = [
            json!({"revocation_file": path.to_str().unwrap(), "every_n_chunks": 1, "cache_ms": 0}),
            json!({"revalidate_url": "http://authz/x", "every_n_chunks": 2}),
        ];
        for cfg in cfgs {
            let c: Arc<dyn Check> = Arc::new(build(&cfg, Some(fake(Ok(true)))).unwrap());
            crate::checks::compliance::assert_compliant(&c);
        }
    }
}
