//! `owner_resolution` (ADMISSION): who is accountable for this request.
//!
//! Precedence: `X-Commit-Owner: human:<id>` > `X-Agent-Id: agent:<id>` >
//! `X-Policy-Name` (with `@X-Policy-Version` when given). Prefixes are exact
//! and lower-case; a principal must be non-empty, at most 256 characters and
//! free of control characters. With `require_owner` (default) a request with
//! no resolvable owner is refused.
use std::sync::Arc;

use super::{
    Check, Factory, Hook, Hooks, Owner, OwnerType, Request, Scratch, Source, Stage, Verdict,
};

const MAX_PRINCIPAL_CHARS: usize = 256;

#[derive(Debug)]
struct OwnerResolution {
    require_owner: bool,
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
        build: Arc::new(|cfg| build(cfg).map(|c| Arc::new(c) as Arc<dyn Check>)),
    }
}

fn build(cfg: &serde_json::Value) -> Result<OwnerResolution, String> {
    let obj = cfg
        .as_object()
        .ok_or("owner_resolution: [checks.config] must be a table")?;
    let mut require_owner = true;
    for (k, v) in obj {
        match k.as_str() {
            "require_owner" => {
                require_owner = v
                    .as_bool()
                    .ok_or("owner_resolution: require_owner must be true or false")?;
            }
            other => {
                return Err(format!(
                    "owner_resolution: unknown key {other:?} (known: require_owner)"
                ))
            }
        }
    }
    Ok(OwnerResolution { require_owner })
}

/// Validate a principal id; `Err` says what is wrong with it.
fn principal(raw: &str) -> Result<String, &'static str> {
    let id = raw.trim();
    if id.is_empty() {
        return Err("is empty");
    }
    if id.chars().count() > MAX_PRINCIPAL_CHARS {
        return Err("is longer than 256 characters");
    }
    if id.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(id.to_string())
}

/// Resolve the owner from headers. `Ok(None)`: no owner header at all.
pub(crate) fn resolve(req: &Request) -> Result<Option<Owner>, String> {
    let prefixed = |header: &str, prefix: &str, kind: OwnerType| -> Result<Option<Owner>, String> {
        let Some(v) = req.header(header) else {
            return Ok(None);
        };
        let rest = v.trim().strip_prefix(prefix).ok_or_else(|| {
            format!("{header} must start with the exact lower-case prefix {prefix:?}")
        })?;
        let id = principal(rest).map_err(|why| format!("{header} principal {why}"))?;
        Ok(Some(Owner { kind, id }))
    };
    if let Some(o) = prefixed("x-commit-owner", "human:", OwnerType::Human)? {
        return Ok(Some(o));
    }
    if let Some(o) = prefixed("x-agent-id", "agent:", OwnerType::Agent)? {
        return Ok(Some(o));
    }
    if let Some(name) = req.header("x-policy-name") {
        let mut id = principal(name).map_err(|why| format!("x-policy-name {why}"))?;
        if let Some(ver) = req.header("x-policy-version") {
            id = format!(
                "{id}@{}",
                principal(ver).map_err(|why| format!("x-policy-version {why}"))?
            );
        }
        return Ok(Some(Owner {
            kind: OwnerType::Policy,
            id,
        }));
    }
    Ok(None)
}

impl Check for OwnerResolution {
    fn hooks(&self) -> Hooks {
        Hooks::PRE_REQUEST
    }

    fn pre_request<'a>(&'a self, req: &'a Arc<Request>, _scratch: &'a mut Scratch) -> Hook<'a> {
        Hook::Ready(Ok(match resolve(req) {
            Ok(Some(owner)) => Verdict::allow().resolving(owner),
            Ok(None) if self.require_owner => Verdict::block("no commit owner could be resolved"),
            Ok(None) => Verdict::allow(),
            Err(why) => Verdict::block(format!("invalid owner header: {why}")),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Arc<Request> {
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
        assert!(!decide(&c, &req(&[("x-commit-owner", "human:")])).is_allow());
        assert!(!decide(&c, &req(&[("x-commit-owner", "human:a\u{7}b")])).is_allow());
        let long = format!("human:{}", "a".repeat(257));
        assert!(!decide(&c, &req(&[("x-commit-owner", &long)])).is_allow());
        let open = build(&serde_json::json!({"require_owner": false})).unwrap();
        assert!(decide(&open, &req(&[])).is_allow());
        assert!(build(&serde_json::json!({"require": true}))
            .unwrap_err()
            .contains("unknown key"));
    }
}
