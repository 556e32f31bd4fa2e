//! Prompt-injection detection engine (the `prompt_injection` check's core).
//!
//! Self-contained: it uses only `std`, `regex`, `unicode-normalization`,
//! `flate2`, `serde_json` and `thiserror`, and nothing else from the host, so
//! the pipeline wraps it as a check and the benches drive it directly.
//!
//! ```text
//! texts ──▶ match (raw, normalized, squashed views) ──▶ findings
//!   │                                                        ▲
//!   └──▶ decoders ──▶ products (gzip/zlib inflated, binary dropped) ─┘
//!           ▲                │
//!           └── depth + 1 ◀──┘        all bounded by `Budget` (bytes, candidates, depth, steps)
//! ```
//!
//! Use: `let scanner = Scanner::new(InjectionConfig::from_json(&v)?)?;` once,
//! then `scanner.scan(&texts)` per request on a blocking thread. The
//! [`ScanReport`] carries the findings (rule, severity, channel chain such as
//! `decoded-base64>rot13`, text index, byte offset), the budget cap that was
//! hit if any, the work done, and the [`Outcome`].
//!
//! | module | owns |
//! |---|---|
//! | `config` | `[checks.config]` parsing and validation, limits |
//! | `json` | typed accessors over JSON values for config parsing |
//! | `error` | [`ConfigError`] |
//! | `report` | findings, budget hits, work stats, the outcome rule |
//! | `rules` | the built-in rule table |
//! | `matcher` | compiled rule sets, vetoes |
//! | `normalize` | NFKC-style folding, confusables, views with offset maps |
//! | `split` | stretched-letter collapse, splitter removal, squashing |
//! | `confusables` | lookalike → Latin table |
//! | `hidden` | zero-width / bidi / tag / variation-selector hiding |
//! | `plausibility` | text vs binary, "reads more like English" for cipher overlays |
//! | `words` | common-word list for that score |
//! | `decoders` | one file per encoding family, candidate extraction |
//! | `budget` | work accounting |
//! | `scan` | [`Scanner`]: the breadth-first decode-and-match driver |
//! | `product` | admitting a decoded product: judge, charge, match, queue |
//! | `lanes` | where scans run: blocking pool, or a low-priority lane for large inputs |
//! | `check` | the pipeline check: text extraction, the scan on the blocking pool, verdict metadata |

mod budget;
mod check;
mod config;
mod confusables;
mod decoders;
mod error;
mod hidden;
mod json;
mod lanes;
mod matcher;
mod normalize;
mod plausibility;
mod product;
mod report;
mod rules;
mod scan;
mod split;
mod words;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests;

pub use config::{Action, BudgetAction, ExtraRule, InjectionConfig, Limits};
pub use error::ConfigError;
pub use report::{BudgetHit, Finding, Outcome, ScanReport, Severity, WorkStats};
pub use rules::builtin_rule_names;
pub use scan::Scanner;

pub use check::factory;
