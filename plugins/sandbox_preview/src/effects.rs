//! Judging a dry run: effect words matched as whole words, and numeric limits
//! on the arguments and the runner's `details`.
use signet_plugin_api::serde_json::Value;

/// Longest `observed_effect` prefix scanned for effect words (characters).
const MAX_SCAN_CHARS: usize = 64 * 1024;

/// What a hit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A human must confirm.
    Escalate,
    /// Refuse outright.
    Block,
}

/// A word or phrase of `deny_effects` / `block_effects`, as lower-case words.
#[derive(Debug, Clone)]
pub struct Phrase {
    /// As configured, for reasons and metadata.
    pub text: String,
    words: Vec<String>,
}

/// Split into lower-case words: maximal runs of letters and digits (Unicode);
/// everything else (spaces, punctuation, `_`, `-`) separates words.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Phrase {
    /// `None` when `text` has no letters or digits.
    pub fn new(text: &str) -> Option<Phrase> {
        let words = words(text);
        (!words.is_empty()).then(|| Phrase {
            text: text.to_string(),
            words,
        })
    }
}

/// The phrases that occur in `effect` as whole words (a phrase: as consecutive
/// words), compared case-insensitively. `delete` matches "will DELETE 3 rows"
/// and "delete_user", not "deleted" or "undelete".
pub fn matching<'p>(effect: &str, phrases: &'p [Phrase]) -> Vec<&'p str> {
    let scanned: String = effect.chars().take(MAX_SCAN_CHARS).collect();
    let have = words(&scanned);
    phrases
        .iter()
        .filter(|p| have.windows(p.words.len()).any(|w| w == p.words.as_slice()))
        .map(|p| p.text.as_str())
        .collect()
}

/// Which document a limit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    /// The tool call's arguments as the model proposed them.
    Arguments,
    /// The runner's `details` (what the dry run says would happen).
    Details,
    /// Both (the default): each one that has a value at the pointer.
    Both,
}

/// A numeric bound on the value at a JSON pointer.
#[derive(Debug, Clone)]
pub struct Limit {
    /// JSON pointer, e.g. `/amount`.
    pub pointer: String,
    /// Smallest allowed value.
    pub min: Option<f64>,
    /// Largest allowed value.
    pub max: Option<f64>,
    /// Where to look.
    pub source: LimitSource,
    /// Only for these tools (`None`: all).
    pub tools: Option<Vec<String>>,
    /// What a violation does.
    pub action: Action,
}

/// One broken limit.
#[derive(Debug, Clone)]
pub struct Violation {
    /// What it does.
    pub action: Action,
    /// Human-readable, e.g. `arguments/amount = 900 is above max 500`.
    pub text: String,
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

impl Limit {
    fn check(&self, source: &str, doc: &Value) -> Option<Violation> {
        let v = doc.pointer(&self.pointer)?;
        let at = format!("{source}{}", self.pointer);
        let text = match number(v) {
            None => format!("{at} is not a finite number, so the limit cannot be checked"),
            Some(n) if self.max.is_some_and(|m| n > m) => {
                format!("{at} = {n} is above max {}", self.max.unwrap_or_default())
            }
            Some(n) if self.min.is_some_and(|m| n < m) => {
                format!("{at} = {n} is below min {}", self.min.unwrap_or_default())
            }
            Some(_) => return None,
        };
        Some(Violation {
            action: self.action,
            text,
        })
    }
}

/// Every limit broken by this call. A limit applies to the tools it names (all
/// when none); it reads `arguments`, and `details` when the runner returned some;
/// a pointer with no value in a document is not checked there.
pub fn violations(
    limits: &[Limit],
    tool: &str,
    arguments: &Value,
    details: Option<&Value>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for l in limits {
        if l.tools
            .as_ref()
            .is_some_and(|t| !t.iter().any(|n| n == tool))
        {
            continue;
        }
        if matches!(l.source, LimitSource::Arguments | LimitSource::Both) {
            out.extend(l.check("arguments", arguments));
        }
        if let (LimitSource::Details | LimitSource::Both, Some(d)) = (l.source, details) {
            out.extend(l.check("details", d));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use signet_plugin_api::serde_json::json;

    fn p(list: &[&str]) -> Vec<Phrase> {
        list.iter().map(|s| Phrase::new(s).unwrap()).collect()
    }

    #[test]
    fn whole_words_case_insensitive() {
        let deny = p(&["delete", "wire transfer", "Payment"]);
        assert_eq!(matching("Will DELETE 3 rows", &deny), ["delete"]);
        assert_eq!(matching("calls delete_user(7)", &deny), ["delete"]);
        assert!(matching("deleted nothing; undelete; deletes", &deny).is_empty());
        assert_eq!(matching("a WIRE-transfer of 5", &deny), ["wire transfer"]);
        assert!(matching("wire then transfer", &deny).is_empty());
        assert_eq!(matching("payment: 5 EUR", &deny), ["Payment"]);
        assert!(matching("", &deny).is_empty());
        assert!(Phrase::new(" -- ").is_none());
        assert_eq!(matching("ÉTEINDRE tout", &p(&["éteindre"])), ["éteindre"]);
    }

    #[test]
    fn limits_read_arguments_and_details() {
        let lim = |source, action| Limit {
            pointer: "/amount".into(),
            min: Some(0.0),
            max: Some(500.0),
            source,
            tools: None,
            action,
        };
        let both = [lim(LimitSource::Both, Action::Escalate)];
        assert!(violations(
            &both,
            "t",
            &json!({"amount": 500}),
            Some(&json!({"amount": 10}))
        )
        .is_empty());
        let v = violations(
            &both,
            "t",
            &json!({"amount": 50}),
            Some(&json!({"amount": "900"})),
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].text, "details/amount = 900 is above max 500");
        let v = violations(&both, "t", &json!({"amount": -1}), None);
        assert_eq!(v[0].text, "arguments/amount = -1 is below min 0");
        let v = violations(&both, "t", &json!({"amount": "NaN"}), None);
        assert!(v[0].text.contains("not a finite number"));
        let v = violations(&both, "t", &json!({"amount": {"x": 1}}), None);
        assert_eq!(v.len(), 1);
        assert!(violations(&both, "t", &json!({"other": 1}), Some(&json!(null))).is_empty());
        let args_only = [lim(LimitSource::Arguments, Action::Block)];
        assert!(violations(&args_only, "t", &json!({}), Some(&json!({"amount": 900}))).is_empty());
        let scoped = [Limit {
            tools: Some(vec!["refund".into()]),
            ..lim(LimitSource::Both, Action::Block)
        }];
        assert!(violations(&scoped, "lookup", &json!({"amount": 900}), None).is_empty());
        assert_eq!(
            violations(&scoped, "refund", &json!({"amount": 900}), None)[0].action,
            Action::Block
        );
    }
}
