//! `classification_gate` (ADMISSION, priority 10): a request whose declared
//! data classification is above the caller's clearance is refused (403)
//! before the model is consulted.
//!
//! Settings: `levels`, `aliases` (the shared ladder, see `levels.rs`);
//! `classification_header` (`x-classification`), `clearance_header`
//! (`x-caller-clearance`); `default_classification`, `default_clearance`
//! (both default to the lowest level) apply when a header is absent or
//! blank. A value that is neither a level nor an alias is refused, as is a
//! header sent twice with different values.
use std::sync::Arc;

use super::levels::Ladder;
use super::settings::Settings;
use super::{Check, Factory, Hook, Hooks, Request, Scratch, Source, Stage, Verdict};

const NAME: &str = "classification_gate";
const KNOWN: &[&str] = &[
    "levels",
    "aliases",
    "classification_header",
    "clearance_header",
    "default_classification",
    "default_clearance",
];

#[derive(Debug)]
struct ClassificationGate {
    ladder: Ladder,
    classification_header: String,
    clearance_header: String,
    default_classification: usize,
    default_clearance: usize,
}

pub(super) fn factory() -> Factory {
    Factory {
        kind: NAME.into(),
        source: Source::Builtin,
        stage: Stage::Admission,
        priority: 10,
        hooks: Hooks::PRE_REQUEST,
        description: "refuses requests classified above the caller's clearance".into(),
        build: Arc::new(|cfg| build(cfg).map(|c| Arc::new(c) as Arc<dyn Check>)),
    }
}

/// A header name setting, lower-cased and checked.
pub(super) fn header_setting(s: &Settings<'_>, key: &str, default: &str) -> Result<String, String> {
    let h = s.string(key, default)?.trim().to_ascii_lowercase();
    let ok = !h.is_empty()
        && h.len() <= 128
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(h)
    } else {
        Err(s.err(
            key,
            format!("{h:?} is not a valid header name"),
            format!("set {key} = {default:?}"),
        ))
    }
}

fn build(cfg: &serde_json::Value) -> Result<ClassificationGate, String> {
    let s = Settings::new(NAME, cfg, KNOWN)?;
    let ladder = Ladder::from_settings(&s)?;
    Ok(ClassificationGate {
        classification_header: header_setting(&s, "classification_header", "x-classification")?,
        clearance_header: header_setting(&s, "clearance_header", "x-caller-clearance")?,
        default_classification: ladder.level_setting(&s, "default_classification")?,
        default_clearance: ladder.level_setting(&s, "default_clearance")?,
        ladder,
    })
}

/// Short, printable rendering of a header value for a reason text.
pub(super) fn shown(v: &str) -> String {
    let s: String = v.chars().filter(|c| !c.is_control()).take(64).collect();
    if v.chars().count() > 64 {
        format!("{s}…")
    } else {
        s
    }
}

/// The level a header declares: `Ok(default)` when absent or blank, `Err`
/// (a refusal reason) when it is unknown or sent twice with different values.
pub(super) fn header_level(
    ladder: &Ladder,
    req: &Request,
    header: &str,
    default: usize,
) -> Result<usize, String> {
    let mut value: Option<&str> = None;
    for (n, v) in req.headers.iter() {
        if n == header {
            match value {
                Some(prev) if prev.trim() != v.trim() => {
                    return Err(format!(
                        "{header} is sent more than once with different values"
                    ))
                }
                _ => value = Some(v),
            }
        }
    }
    let value = match value {
        Some(v) => v,
        None if header == "x-classification" => req.classification.as_str(),
        None => "",
    };
    if value.trim().is_empty() {
        return Ok(default);
    }
    ladder
        .parse(value)
        .ok_or_else(|| format!("{header} value {:?} is not a known level", shown(value)))
}

impl ClassificationGate {
    fn decide(&self, req: &Request) -> Verdict {
        let classification = match header_level(
            &self.ladder,
            req,
            &self.classification_header,
            self.default_classification,
        ) {
            Ok(l) => l,
            Err(why) => {
                return Verdict::block(why)
                    .with("header", self.classification_header.clone().into())
            }
        };
        let clearance = match header_level(
            &self.ladder,
            req,
            &self.clearance_header,
            self.default_clearance,
        ) {
            Ok(l) => l,
            Err(why) => {
                return Verdict::block(why).with("header", self.clearance_header.clone().into())
            }
        };
        if clearance < classification {
            return Verdict::block(format!(
                "caller clearance {} is below the request's classification {}",
                self.ladder.name(clearance),
                self.ladder.name(classification)
            ))
            .with("classification", self.ladder.name(classification).into())
            .with("clearance", self.ladder.name(clearance).into());
        }
        Verdict::allow()
    }
}

impl Check for ClassificationGate {
    fn hooks(&self) -> Hooks {
        Hooks::PRE_REQUEST
    }

    fn pre_request<'a>(&'a self, req: &'a Arc<Request>, _scratch: &'a mut Scratch) -> Hook<'a> {
        Hook::Ready(Ok(self.decide(req)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::owner_resolution::tests::req;

    fn decide(c: &ClassificationGate, h: &[(&str, &str)]) -> Verdict {
        c.decide(&req(h))
    }

    #[test]
    fn clearance_below_classification_is_refused() {
        let c = build(&json!({})).unwrap();
        assert!(decide(&c, &[]).is_allow());
        assert!(decide(
            &c,
            &[("x-classification", "SECRET"), ("x-caller-clearance", "TS")]
        )
        .is_allow());
        assert!(decide(
            &c,
            &[("x-classification", "secret"), ("x-caller-clearance", "S")]
        )
        .is_allow());
        let v = decide(
            &c,
            &[
                ("x-classification", "SECRET"),
                ("x-caller-clearance", "CUI"),
            ],
        );
        assert!(!v.is_allow());
        assert_eq!(v.metadata["classification"], "SECRET");
        assert_eq!(v.metadata["clearance"], "CUI");
        // No clearance header: the lowest level.
        assert!(!decide(&c, &[("x-classification", "FOUO")]).is_allow());
        assert!(decide(&c, &[("x-classification", "U")]).is_allow());
        assert!(decide(
            &c,
            &[
                ("x-classification", "TOP SECRET"),
                ("x-caller-clearance", "sci")
            ]
        )
        .is_allow());
        assert!(!decide(
            &c,
            &[
                ("x-classification", "TS/SCI"),
                ("x-caller-clearance", "TOP SECRET")
            ]
        )
        .is_allow());
    }

    #[test]
    fn unknown_or_conflicting_values_block() {
        let c = build(&json!({})).unwrap();
        assert!(!decide(
            &c,
            &[
                ("x-classification", "SEKRET"),
                ("x-caller-clearance", "TS/SCI")
            ]
        )
        .is_allow());
        assert!(!decide(&c, &[("x-caller-clearance", "god")]).is_allow());
        assert!(!decide(
            &c,
            &[
                ("x-caller-clearance", "UNCLASS"),
                ("x-caller-clearance", "TS/SCI"),
                ("x-classification", "TS")
            ]
        )
        .is_allow());
        // Blank = absent = the default.
        assert!(decide(&c, &[("x-classification", "  ")]).is_allow());
    }

    #[test]
    fn custom_levels_internal_caller_asking_for_restricted_is_refused() {
        let c = build(&json!({
            "levels": ["PUBLIC", "INTERNAL", "RESTRICTED"],
            "aliases": {"CONFIDENTIAL": "RESTRICTED"},
            "classification_header": "X-Data-Class",
            "clearance_header": "X-Clearance",
            "default_clearance": "internal",
        }))
        .unwrap();
        let v = decide(
            &c,
            &[("x-data-class", "RESTRICTED"), ("x-clearance", "INTERNAL")],
        );
        assert!(!v.is_allow());
        assert!(
            v.reason.contains("INTERNAL") && v.reason.contains("RESTRICTED"),
            "{}",
            v.reason
        );
        assert!(!decide(&c, &[("x-data-class", "confidential")]).is_allow());
        assert!(decide(&c, &[("x-data-class", "internal")]).is_allow());
        assert!(decide(
            &c,
            &[
                ("x-data-class", "RESTRICTED"),
                ("x-clearance", "restricted")
            ]
        )
        .is_allow());
        // The default ladder's names mean nothing here.
        assert!(!decide(&c, &[("x-data-class", "UNCLASS")]).is_allow());
    }

    #[test]
    fn config_errors_name_check_key_and_fix() {
        for (cfg, key) in [
            (json!({"levls": []}), "levls"),
            (json!({"default_clearance": "COSMIC"}), "default_clearance"),
            (
                json!({"classification_header": "bad header"}),
                "classification_header",
            ),
            (
                json!({"levels": ["A"], "default_classification": "SECRET"}),
                "default_classification",
            ),
        ] {
            let e = build(&cfg).unwrap_err();
            assert!(
                e.contains(NAME) && e.contains(key) && e.contains("fix"),
                "{e}"
            );
        }
    }

    #[test]
    fn compliance() {
        for cfg in [
            json!({}),
            json!({"levels": ["PUBLIC", "INTERNAL"], "default_classification": "INTERNAL"}),
        ] {
            let c: Arc<dyn Check> = Arc::new(build(&cfg).unwrap());
            crate::checks::compliance::assert_compliant(&c);
        }
    }
}
