//! The classification ladder shared by `classification_gate` and
//! `scope_drift`: ordered level names (lowest first) plus aliases, matched
//! after NFKC normalisation, trimming, upper-casing and collapsing runs of
//! whitespace — so `top secret`, `Top  Secret` and fullwidth `ＴＳ` parse.
//!
//! Settings read here (by both checks): `levels` (lowest first; default
//! `["UNCLASS","CUI","SECRET","TS","TS/SCI"]`) and `aliases = { ALIAS = "LEVEL" }`.
//! With the default levels, the default aliases (U, UNCLASSIFIED → UNCLASS;
//! FOUO, U//FOUO → CUI; S → SECRET; TOP SECRET → TS; SCI, TS//SCI, TOP
//! SECRET//SCI → TS/SCI; …) apply and `aliases` extends them; custom `levels`
//! start with no aliases but the configured ones.
use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

use super::settings::Settings;

const MAX_LEVELS: usize = 64;
const MAX_NAME_CHARS: usize = 64;

/// The default level names, lowest first.
pub(super) const DEFAULT_LEVELS: [&str; 5] = ["UNCLASS", "CUI", "SECRET", "TS", "TS/SCI"];

const DEFAULT_ALIASES: &[(&str, &str)] = &[
    ("U", "UNCLASS"),
    ("UNCLASSIFIED", "UNCLASS"),
    ("FOUO", "CUI"),
    ("U//FOUO", "CUI"),
    ("UNCLASSIFIED//FOUO", "CUI"),
    ("CONTROLLED UNCLASSIFIED INFORMATION", "CUI"),
    ("S", "SECRET"),
    ("TOP SECRET", "TS"),
    ("TOPSECRET", "TS"),
    ("TOP-SECRET", "TS"),
    ("SCI", "TS/SCI"),
    ("TS//SCI", "TS/SCI"),
    ("TS-SCI", "TS/SCI"),
    ("TS_SCI", "TS/SCI"),
    ("TOP SECRET/SCI", "TS/SCI"),
    ("TOP SECRET//SCI", "TS/SCI"),
];

/// Canonical form of a level name or header value.
pub(super) fn normalize_label(s: &str) -> String {
    let upper: String = s.nfkc().flat_map(char::to_uppercase).collect();
    upper.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An ordered ladder of levels with aliases.
#[derive(Debug, Clone)]
pub(super) struct Ladder {
    names: Vec<String>,
    lookup: HashMap<String, usize>,
}

impl Ladder {
    /// The default (US government) ladder with its aliases.
    pub fn usg() -> Ladder {
        let mut l = Ladder::bare(DEFAULT_LEVELS.iter().map(|s| s.to_string()).collect());
        for (alias, level) in DEFAULT_ALIASES {
            if let Some(i) = l.parse(level) {
                l.lookup.insert(normalize_label(alias), i);
            }
        }
        l
    }

    fn bare(names: Vec<String>) -> Ladder {
        let lookup = names
            .iter()
            .enumerate()
            .map(|(i, n)| (normalize_label(n), i))
            .collect();
        Ladder { names, lookup }
    }

    /// The ladder configured by `levels` and `aliases` in `s`.
    pub fn from_settings(s: &Settings<'_>) -> Result<Ladder, String> {
        let mut ladder = match s.str_list("levels")? {
            None => Ladder::usg(),
            Some(levels) => {
                if levels.is_empty() || levels.len() > MAX_LEVELS {
                    return Err(s.err(
                        "levels",
                        format!("must list 1 to {MAX_LEVELS} levels, lowest first"),
                        "write levels = [\"PUBLIC\", \"INTERNAL\", \"RESTRICTED\"]",
                    ));
                }
                let mut names = Vec::new();
                for l in levels {
                    let n = normalize_label(&l);
                    if n.is_empty() || n.chars().count() > MAX_NAME_CHARS {
                        return Err(s.err(
                            "levels",
                            format!("level {l:?} must be 1 to {MAX_NAME_CHARS} characters"),
                            "give every level a short name",
                        ));
                    }
                    if names.contains(&n) {
                        return Err(s.err(
                            "levels",
                            format!(
                                "level {l:?} is listed twice (names compare case-insensitively)"
                            ),
                            "list every level once",
                        ));
                    }
                    names.push(n);
                }
                Ladder::bare(names)
            }
        };
        for (alias, target) in s.str_map("aliases")?.unwrap_or_default() {
            let key = format!("aliases.{alias}");
            let a = normalize_label(&alias);
            if a.is_empty() {
                return Err(s.err(&key, "an alias must not be empty", "remove it"));
            }
            let Some(level) = ladder
                .names
                .iter()
                .position(|n| *n == normalize_label(&target))
            else {
                return Err(s.err(
                    &key,
                    format!("{target:?} is not a level"),
                    format!("point it at one of: {}", ladder.names.join(", ")),
                ));
            };
            if let Some(existing) = ladder.names.iter().position(|n| *n == a) {
                if existing != level {
                    return Err(s.err(
                        &key,
                        format!("{alias:?} is itself a level and cannot mean {target:?}"),
                        "remove the alias",
                    ));
                }
            }
            ladder.lookup.insert(a, level);
        }
        Ok(ladder)
    }

    /// The level a value names (a level or an alias), if any.
    pub fn parse(&self, value: &str) -> Option<usize> {
        if value.len() > 1024 {
            return None;
        }
        self.lookup.get(&normalize_label(value)).copied()
    }

    /// Level name.
    pub fn name(&self, level: usize) -> &str {
        self.names.get(level).map_or("?", String::as_str)
    }

    /// A setting naming a level (default: the lowest).
    pub fn level_setting(&self, s: &Settings<'_>, key: &str) -> Result<usize, String> {
        match s.opt_str(key)? {
            None => Ok(0),
            Some(v) => self.parse(v).ok_or_else(|| {
                s.err(
                    key,
                    format!("{v:?} is not a level or alias"),
                    format!("use one of: {}", self.names.join(", ")),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn default_ladder_and_aliases() {
        let l = Ladder::usg();
        assert_eq!(l.parse("unclass"), Some(0));
        assert_eq!(l.parse(" U "), Some(0));
        assert_eq!(l.parse("fouo"), Some(1));
        assert_eq!(l.parse("Top  Secret"), Some(3));
        assert_eq!(l.parse("\u{FF34}\u{FF33}"), Some(3));
        assert_eq!(l.parse("ts/sci"), Some(4));
        assert_eq!(l.parse("TOP SECRET//SCI"), Some(4));
        assert_eq!(l.parse("SCI"), Some(4));
        assert_eq!(l.parse("confidential"), None);
        assert_eq!(l.parse(""), None);
        assert_eq!(l.name(2), "SECRET");
    }

    #[test]
    fn custom_levels_and_validation() {
        let cfg = json!({"levels": ["public", "Internal", "RESTRICTED"], "aliases": {"conf": "internal"}});
        let s = Settings::new("t", &cfg, &["levels", "aliases"]).unwrap();
        let l = Ladder::from_settings(&s).unwrap();
        assert_eq!(l.parse("INTERNAL"), Some(1));
        assert_eq!(l.parse("Conf"), Some(1));
        assert_eq!(l.parse("SECRET"), None);
        for bad in [
            json!({"levels": []}),
            json!({"levels": ["A", "a"]}),
            json!({"levels": ["A"], "aliases": {"B": "C"}}),
            json!({"levels": ["A", "B"], "aliases": {"A": "B"}}),
            json!({"levels": "A"}),
        ] {
            let s = Settings::new("t", &bad, &["levels", "aliases"]).unwrap();
            let e = Ladder::from_settings(&s).unwrap_err();
            assert!(e.starts_with("t: ") && e.contains("fix:"), "{e}");
        }
    }
}
