//! `cool_check`: the example check from the plugin guide. It refuses a chat
//! request that carries more than `threshold` messages (a cheap guard against
//! runaway agent loops stuffing the context).
//!
//! Run with: see README.md (build, `signet plugins install`, then
//! `kind = "cool_check"` in signet.toml).
use signet_plugin_api::{Check, HookResult, Hooks, RequestView, Scratch, Stage, Verdict};

/// The check; one instance per `[[checks]]` entry.
pub struct CoolCheck {
    threshold: usize,
}

impl Check for CoolCheck {
    const NAME: &'static str = "cool_check";
    const STAGE: Stage = Stage::Admission;
    const PRIORITY: i32 = 300;
    const HOOKS: Hooks = Hooks::PRE_REQUEST;
    // Counting messages is cheap and never blocks: call it inline.
    const INLINE_HOOKS: Hooks = Hooks::PRE_REQUEST;
    const DESCRIPTION: &'static str = "refuses requests with more than `threshold` messages";

    fn new(config: &signet_plugin_api::serde_json::Value) -> Result<Self, String> {
        let obj = config
            .as_object()
            .ok_or("cool_check: [checks.config] must be a table")?;
        if let Some(key) = obj.keys().find(|k| k.as_str() != "threshold") {
            return Err(format!(
                "cool_check: unknown key {key:?} (known: threshold)"
            ));
        }
        let threshold = match obj.get("threshold") {
            None => 50,
            Some(v) => v.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or(
                "cool_check: threshold must be a non-negative integer, e.g. threshold = 50",
            )?,
        };
        Ok(CoolCheck { threshold })
    }

    fn pre_request(&self, req: &RequestView<'_>, _scratch: &mut Scratch) -> HookResult {
        let body = req.body()?;
        let count = body
            .get("messages")
            .and_then(|m| m.as_array())
            .map_or(0, Vec::len);
        if count > self.threshold {
            let reason = format!(
                "request has {count} messages, more than the threshold of {}",
                self.threshold
            );
            return Ok(Verdict::block(&reason)
                .with_metadata(signet_plugin_api::serde_json::json!({"messages": count, "threshold": self.threshold})));
        }
        Ok(Verdict::allow())
    }
}

signet_plugin_api::export_plugin!(CoolCheck);

#[cfg(test)]
mod tests {
    use super::*;
    use signet_plugin_api::serde_json::json;
    use signet_plugin_api::testing::{FakeHost, FakeRequest};

    fn messages(n: usize) -> FakeRequest {
        FakeRequest::chat(json!({"messages": vec![json!({"role": "user", "content": "hi"}); n]}))
    }

    #[test]
    fn blocks_above_threshold_only() {
        let mut host = FakeHost::build::<CoolCheck>(json!({"threshold": 2})).unwrap();
        assert!(host.pre_request(&messages(2)).unwrap().is_allow());
        let v = host.pre_request(&messages(3)).unwrap();
        assert!(!v.is_allow());
        assert!(v.reason.as_str().contains("3 messages"));
    }

    #[test]
    fn config_errors_name_the_key() {
        let e = FakeHost::build::<CoolCheck>(json!({"treshold": 2}))
            .err()
            .unwrap();
        assert!(e.contains("treshold"), "{e}");
        let e = FakeHost::build::<CoolCheck>(json!({"threshold": -1}))
            .err()
            .unwrap();
        assert!(e.contains("threshold must be"), "{e}");
    }
}
