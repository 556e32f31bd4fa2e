//! `owner_resolution` (ADMISSION, priority 0): who is accountable for this request.
//!
//! Precedence: `X-Commit-Owner: human:<id>` > `X-Agent-Id: agent:<id>` >
//! `X-Policy-Name` (with `@X-Policy-Version` when given). Prefixes are exact
//! and lower-case. A principal is trimmed, NFKC-normalised, stripped of
//! invisible characters and confusable-folded (Cyrillic `а` → `a`, …), so
//! lookalike spellings are one owner; it must then be non-empty, at most 256
//! characters and free of control and bidirectional-override characters. An
//! owner header sent twice with different values is refused.
//!
//! Settings: `require_owner` (true): refuse a request with no owner. When an
//! earlier ADMISSION check resolved an owner (e.g. `loopback_trust`, which by
//! default runs before this one) and no owner header is present, that owner
//! stands; an owner header, when present, always wins.
//!
//! Sessions: with `bind_sessions` (true), an `X-Signet-Session` id is bound
//! in the state backend to the first owner that uses it, for `session_ttl_s`
//! (3600) seconds after its last use; the same id sent by another owner is
//! refused ("session mismatch"), so a session cannot be carried across
//! owners — across replicas too when the backend is Redis. The binding is one
//! atomic backend step; a state failure refuses with 503 `state_unavailable`.
//! Requests without the header, or with no resolved owner, bind nothing.
use std::sync::Arc;

use unicode_normalization::UnicodeNormalization;

use super::settings::Settings;
use super::{
    Check, Factory, Hook, HookResult, Hooks, Owner, OwnerType, Request, Scratch, Source, Stage,
    Verdict,
};
use crate::state::{self, SessionBinding, StateBackend, StateError, StateOp};

const MAX_PRINCIPAL_CHARS: usize = 256;
/// Raw header values longer than this are refused before any normalisation work.
const MAX_RAW_BYTES: usize = 4096;

struct OwnerResolution {
    require_owner: bool,
    bind_sessions: bool,
    session_ttl_ms: u64,
    state: Arc<dyn StateBackend>,
}

pub(super) fn factory() -> Factory {
    Factory {
        kind: "owner_resolution".into(),
        source: Source::Builtin,
        stage: Stage::Admission,
        priority: 0,
        hooks: Hooks::PRE_REQUEST,
        description:
            "resolves the accountable owner from X-Commit-Owner / X-Agent-Id / X-Policy-Name".into(),
        build: Arc::new(|cfg| {
            build_with(cfg, state::for_check()).map(|c| Arc::new(c) as Arc<dyn Check>)
        }),
    }
}

fn build_with(
    cfg: &serde_json::Value,
    state: Arc<dyn StateBackend>,
) -> Result<OwnerResolution, String> {
    let s = Settings::new(
        "owner_resolution",
        cfg,
        &["require_owner", "bind_sessions", "session_ttl_s"],
    )?;
    Ok(OwnerResolution {
        require_owner: s.bool("require_owner", true)?,
        bind_sessions: s.bool("bind_sessions", true)?,
        session_ttl_ms: s.uint("session_ttl_s", 3600, 1, 30 * 86_400)? * 1000,
        state,
    })
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

/// The canonical form of a principal id; `Err` says what is wrong with it.
pub(super) fn canonical_principal(raw: &str) -> Result<String, &'static str> {
    let raw = raw.trim();
    if raw.len() > MAX_RAW_BYTES {
        return Err("is longer than 256 characters");
    }
    if raw.chars().any(is_bidi_control) {
        return Err("contains bidirectional control characters");
    }
    let folded: String = raw
        .nfkc()
        .filter(|c| !is_invisible(*c))
        .map(super::confusable_fold::fold_char)
        .collect();
    let id = folded.trim();
    if id.is_empty() {
        return Err("is empty");
    }
    if id.chars().count() > MAX_PRINCIPAL_CHARS {
        return Err("is longer than 256 characters");
    }
    if id.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err("contains control characters");
    }
    Ok(id.to_string())
}

/// The single value of a header; `Err` when it is sent twice with different values.
fn single<'a>(req: &'a Request, name: &str) -> Result<Option<&'a str>, String> {
    let mut found: Option<&str> = None;
    for (n, v) in req.headers.iter() {
        if n == name {
            match found {
                Some(prev) if prev.trim() != v.trim() => {
                    return Err(format!(
                        "{name} is sent more than once with different values"
                    ))
                }
                _ => found = Some(v.as_str()),
            }
        }
    }
    Ok(found)
}

/// Resolve the owner from the owner headers. `Ok(None)`: no owner header at
/// all; `Err`: an owner header is present but invalid.
pub(super) fn resolve(req: &Request) -> Result<Option<Owner>, String> {
    let prefixed = |header: &str, prefix: &str, kind: OwnerType| -> Result<Option<Owner>, String> {
        let Some(v) = single(req, header)? else {
            return Ok(None);
        };
        let rest = v.trim().strip_prefix(prefix).ok_or_else(|| {
            format!("{header} must start with the exact lower-case prefix {prefix:?}")
        })?;
        let id = canonical_principal(rest).map_err(|why| format!("{header} principal {why}"))?;
        Ok(Some(Owner { kind, id }))
    };
    if let Some(o) = prefixed("x-commit-owner", "human:", OwnerType::Human)? {
        return Ok(Some(o));
    }
    if let Some(o) = prefixed("x-agent-id", "agent:", OwnerType::Agent)? {
        return Ok(Some(o));
    }
    if let Some(name) = single(req, "x-policy-name")? {
        let mut id = canonical_principal(name).map_err(|why| format!("x-policy-name {why}"))?;
        if let Some(ver) = single(req, "x-policy-version")? {
            let ver = canonical_principal(ver).map_err(|why| format!("x-policy-version {why}"))?;
            id = format!("{id}@{ver}");
            if id.chars().count() > MAX_PRINCIPAL_CHARS {
                return Err("x-policy-name@x-policy-version is longer than 256 characters".into());
            }
        }
        return Ok(Some(Owner {
            kind: OwnerType::Policy,
            id,
        }));
    }
    Ok(None)
}

/// The verdict once the backend answered a session binding.
fn bound(verdict: Verdict, owner: &Owner, r: Result<SessionBinding, StateError>) -> HookResult {
    let refused = match r {
        Ok(SessionBinding::Bound) => return Ok(verdict),
        Ok(SessionBinding::Mismatch { owner: holder }) => Verdict::block(
            "session mismatch: this X-Signet-Session is bound to another owner; start a new session",
        )
        .with("owner", owner.qualified().into())
        .with("session_owner", holder.into()),
        Err(e) => Verdict::unavailable(e.to_string()),
    };
    // A refusal keeps the owner this check resolved: the audit row names who asked.
    Ok(match verdict.owner {
        Some(o) => refused.resolving(o),
        None => refused,
    })
}

impl OwnerResolution {
    fn resolved(&self, req: &Request) -> Verdict {
        match resolve(req) {
            Ok(Some(owner)) => Verdict::allow().resolving(owner),
            // Resolved by an earlier trust check (e.g. loopback_trust) and no header to override it.
            Ok(None) if req.owner.kind != OwnerType::Unresolved => Verdict::allow(),
            Ok(None) if self.require_owner => Verdict::block("no commit owner could be resolved"),
            Ok(None) => Verdict::allow(),
            Err(why) => Verdict::block(format!("invalid owner header: {why}")),
        }
    }
}

impl Check for OwnerResolution {
    fn hooks(&self) -> Hooks {
        Hooks::PRE_REQUEST
    }

    fn pre_request<'a>(&'a self, req: &'a Arc<Request>, _scratch: &'a mut Scratch) -> Hook<'a> {
        let verdict = self.resolved(req);
        if !self.bind_sessions || !verdict.is_allow() {
            return Hook::Ready(Ok(verdict));
        }
        let session = match single(req, "x-signet-session") {
            Ok(Some(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Ok(_) => return Hook::Ready(Ok(verdict)),
            Err(why) => {
                return Hook::Ready(Ok(Verdict::block(format!("invalid session header: {why}"))))
            }
        };
        let owner = match &verdict.owner {
            Some(o) => o.clone(),
            None if req.owner.kind != OwnerType::Unresolved => req.owner.clone(),
            // No owner to bind the session to.
            None => return Hook::Ready(Ok(verdict)),
        };
        match self
            .state
            .bind_session(session, owner.qualified(), self.session_ttl_ms)
        {
            StateOp::Ready(r) => Hook::Ready(bound(verdict, &owner, r)),
            StateOp::Pending(f) => {
                Hook::Pending(Box::pin(async move { bound(verdict, &owner, f.await) }))
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::checks) fn req(headers: &[(&str, &str)]) -> Arc<Request> {
        Arc::new(Request {
            correlation_id: "c".into(),
            path: "/v1/chat/completions".into(),
            client_ip: "127.0.0.1".into(),
            headers: Arc::new(
                headers
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            ),
            owner: Owner::unresolved(),
            classification: String::new(),
            body: Arc::new(serde_json::json!({})),
            body_json: Arc::from("{}"),
            fingerprint: String::new(),
        })
    }

    fn build(cfg: &serde_json::Value) -> Result<OwnerResolution, String> {
        build_with(cfg, Arc::new(crate::state::MemoryState::new()))
    }

    fn decide(c: &OwnerResolution, r: &Arc<Request>) -> Verdict {
        match c.pre_request(r, &mut None) {
            Hook::Ready(Ok(v)) => v,
            _ => panic!("owner_resolution must decide inline"),
        }
    }

    #[test]
    fn precedence_and_validation() {
        let c = build(&serde_json::json!({})).unwrap();
        let v = decide(
            &c,
            &req(&[
                ("x-agent-id", "agent:bot"),
                ("x-commit-owner", "human:alice"),
            ]),
        );
        assert_eq!(
            v.owner,
            Some(Owner {
                kind: OwnerType::Human,
                id: "alice".into()
            })
        );
        let v = decide(
            &c,
            &req(&[("x-agent-id", "agent:bot"), ("x-policy-name", "p")]),
        );
        assert_eq!(v.owner.unwrap().qualified(), "agent:bot");
        let v = decide(
            &c,
            &req(&[("x-policy-name", "nightly"), ("x-policy-version", "3")]),
        );
        assert_eq!(v.owner.unwrap().qualified(), "policy:nightly@3");
        assert!(!decide(&c, &req(&[])).is_allow());
        assert!(!decide(&c, &req(&[("x-commit-owner", "Human:alice")])).is_allow());
        assert!(!decide(&c, &req(&[("x-commit-owner", "HUMAN:alice")])).is_allow());
        assert!(!decide(&c, &req(&[("x-commit-owner", "human:")])).is_allow());
        assert!(!decide(&c, &req(&[("x-commit-owner", "human:a\u{7}b")])).is_allow());
        let long = format!("human:{}", "a".repeat(257));
        assert!(!decide(&c, &req(&[("x-commit-owner", &long)])).is_allow());
        let ok = format!("human:{}", "a".repeat(256));
        assert!(decide(&c, &req(&[("x-commit-owner", &ok)])).is_allow());
        let open = build(&serde_json::json!({"require_owner": false})).unwrap();
        assert!(decide(&open, &req(&[])).is_allow());
        let e = build(&serde_json::json!({"require": true})).err().unwrap();
        assert!(
            e.contains("owner_resolution") && e.contains("\"require\"") && e.contains("fix"),
            "{e}"
        );
        assert!(build(&serde_json::json!({"require_owner": "yes"})).is_err());
    }

    #[test]
    fn principals_are_normalised_and_confusable_folded() {
        let c = build(&serde_json::json!({})).unwrap();
        let id = |h: &str| {
            decide(&c, &req(&[("x-commit-owner", h)]))
                .owner
                .map(|o| o.id)
        };
        // Cyrillic а, fullwidth letters, a zero-width space: all the same owner.
        assert_eq!(id("human:\u{0430}lice").as_deref(), Some("alice"));
        assert_eq!(id("human:\u{FF41}\u{FF4C}ice").as_deref(), Some("alice"));
        assert_eq!(id("human:al\u{200B}ice").as_deref(), Some("alice"));
        assert_eq!(id("human:  alice ").as_deref(), Some("alice"));
        // Bidi overrides are refused, not folded.
        assert_eq!(id("human:al\u{202E}ecil"), None);
        // Only invisible characters: empty.
        assert_eq!(id("human:\u{200B}\u{FEFF}"), None);
        // A fullwidth prefix is not the exact prefix.
        assert_eq!(id("\u{FF48}uman:alice"), None);
    }

    #[test]
    fn duplicated_owner_headers_must_agree() {
        let c = build(&serde_json::json!({})).unwrap();
        let two = req(&[
            ("x-commit-owner", "human:alice"),
            ("x-commit-owner", "human:mallory"),
        ]);
        assert!(!decide(&c, &two).is_allow());
        let same = req(&[
            ("x-commit-owner", "human:alice"),
            ("x-commit-owner", "human:alice"),
        ]);
        assert!(decide(&c, &same).is_allow());
    }

    #[test]
    fn an_owner_resolved_earlier_stands_unless_a_header_overrides_it() {
        let c = build(&serde_json::json!({})).unwrap();
        let mut r = Request::clone(&req(&[]));
        r.owner = Owner {
            kind: OwnerType::Policy,
            id: "internal-loopback".into(),
        };
        let v = decide(&c, &Arc::new(r.clone()));
        assert!(v.is_allow() && v.owner.is_none());
        r.headers = Arc::new(vec![("x-agent-id".into(), "agent:bot".into())]);
        assert_eq!(
            decide(&c, &Arc::new(r)).owner.unwrap().qualified(),
            "agent:bot"
        );
    }

    #[test]
    fn sessions_bind_to_the_first_owner_until_they_expire() {
        use crate::state::{ManualClock, MemoryState};
        let clock = Arc::new(ManualClock::new(1_000_000));
        let c = build_with(
            &serde_json::json!({"session_ttl_s": 60}),
            Arc::new(MemoryState::with_clock(clock.clone())),
        )
        .unwrap();
        let with = |owner: &str, session: &str| {
            decide(
                &c,
                &req(&[("x-commit-owner", owner), ("x-signet-session", session)]),
            )
        };
        assert!(with("human:alice", "s-1").is_allow());
        assert!(with("human:alice", " s-1 ").is_allow(), "same id, trimmed");
        assert!(
            with("human:\u{0430}lice", "s-1").is_allow(),
            "a lookalike spelling is the same owner"
        );
        let v = with("human:mallory", "s-1");
        assert!(
            !v.is_allow() && v.reason.contains("session mismatch"),
            "{v:?}"
        );
        assert_eq!(v.metadata["session_owner"], "human:alice");
        assert_eq!(v.owner.as_ref().unwrap().qualified(), "human:mallory");
        assert!(
            !v.reason.contains("alice"),
            "the holder is named in the audit row, not to the caller"
        );
        assert!(with("human:mallory", "s-2").is_allow());
        // Used at +59 s: still alice's at +118 s; free at +180 s.
        clock.advance(59_000);
        assert!(with("human:alice", "s-1").is_allow());
        clock.advance(59_000);
        assert!(!with("human:mallory", "s-1").is_allow());
        clock.advance(62_000);
        assert!(with("human:mallory", "s-1").is_allow());
        // An owner resolved by an earlier check binds too.
        let mut r = Request::clone(&req(&[("x-signet-session", "s-1")]));
        r.owner = Owner {
            kind: OwnerType::Policy,
            id: "internal-loopback".into(),
        };
        assert!(!decide(&c, &Arc::new(r)).is_allow());
        // Two different session headers are refused; an empty one binds nothing.
        let two = req(&[
            ("x-commit-owner", "human:alice"),
            ("x-signet-session", "a"),
            ("x-signet-session", "b"),
        ]);
        assert!(!decide(&c, &two).is_allow());
        assert!(with("human:zed", "  ").is_allow());
        // Switched off: no binding.
        let off = build(&serde_json::json!({"bind_sessions": false})).unwrap();
        for o in ["human:a", "human:b"] {
            let r = req(&[("x-commit-owner", o), ("x-signet-session", "s")]);
            assert!(decide(&off, &r).is_allow());
        }
        assert!(build(&serde_json::json!({"session_ttl_s": 0})).is_err());
    }

    #[test]
    fn a_state_failure_refuses_a_session_with_503_and_leaves_others_alone() {
        use crate::checks::{BlockClass, Decision};
        let c = build_with(
            &serde_json::json!({}),
            Arc::new(crate::state::fake::DownState::default()),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = req(&[("x-commit-owner", "human:alice"), ("x-signet-session", "s")]);
        let v = match c.pre_request(&r, &mut None) {
            Hook::Pending(f) => rt.block_on(f).unwrap(),
            Hook::Ready(_) => panic!("the down backend answers asynchronously"),
        };
        assert!(matches!(
            v.decision,
            Decision::Block {
                class: BlockClass::Unavailable,
                ..
            }
        ));
        assert_eq!(v.reason, "state_unavailable");
        assert!(v.metadata["state_error"]
            .as_str()
            .unwrap()
            .contains("connection refused"));
        assert_eq!(v.owner.unwrap().qualified(), "human:alice");
        // No session header: no state needed.
        assert!(decide(&c, &req(&[("x-commit-owner", "human:alice")])).is_allow());
    }

    #[test]
    fn compliance() {
        let c: Arc<dyn Check> = Arc::new(build(&serde_json::json!({})).unwrap());
        crate::checks::compliance::assert_compliant(&c);
    }
}
