//! `signet audit report PATH`: what the gate decided, summed up — totals, the
//! time range, counts by check, decision and owner, the owners refused most,
//! and a per-day breakdown, as Markdown or JSON, optionally with a daily
//! stacked bar chart written as a self-contained SVG (drawn by hand here).
//!
//! Entries are read with [`crate::audit::query::tail`] (unparseable lines are
//! skipped there); nothing here checks signatures — run `signet audit verify`
//! for that. Two kinds of rows are counted apart:
//! * request rows (`check_name = "pipeline.complete"`): one per request, its
//!   final decision (allow, or block for a refused request);
//! * check rows (every other `check_name`): one per non-allow check decision
//!   (a check row in audit mode carries `metadata.shadow = true`: recorded,
//!   not enforced).
//!
//! Owners, the top refused list and the per-day chart count requests. A log
//! with no request rows (e.g. written by signet-sign) is counted per entry
//! instead; the output says which (`basis`).
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::audit::json::{self, Json};
use crate::audit::query::{format_ts, sanitize, tail, Filter};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables for people (and for pasting into an issue or a wiki).
    Markdown,
    /// One JSON object for scripts.
    Json,
}

/// Arguments of `signet audit report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The audit log (JSONL), or a directory: every `*.jsonl` in it is counted.
    pub path: PathBuf,
    /// Only entries newer than this, counted back from now: a number and a
    /// unit, s / m / h / d / w (e.g. 30m, 24h, 7d).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<Since>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    pub format: Format,
    /// Also write a daily bar chart (decisions per day, stacked by decision) to
    /// this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// How many owners the "top refused owners" list shows.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

/// A `--since` window.
#[derive(Debug, Clone)]
pub struct Since {
    text: String,
    nanos: u64,
}

fn parse_since(s: &str) -> Result<Since, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        format!(
            "{s:?} is not a duration: use a number and a unit s, m, h, d or w, e.g. 30m, 24h, 7d"
        )
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let nanos = n
        .checked_mul(secs)
        .and_then(|x| x.checked_mul(1_000_000_000))
        .ok_or_else(bad)?;
    Ok(Since {
        text: t.to_owned(),
        nanos,
    })
}

const KINDS: [&str; 4] = ["allow", "block", "redact", "escalate"];

/// Decision counts.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// allow, block, redact, escalate.
    by_kind: [u64; 4],
    /// A decision spelled otherwise.
    other: u64,
    /// Of the above, recorded in audit (shadow) mode.
    shadow: u64,
}

impl Counts {
    fn add(&mut self, decision: &str, shadow: bool) {
        match KINDS.iter().position(|k| *k == decision) {
            Some(i) => self.by_kind[i] += 1,
            None => self.other += 1,
        }
        if shadow {
            self.shadow += 1;
        }
    }

    fn get(&self, kind: &str) -> u64 {
        KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.by_kind[i])
    }

    fn total(&self) -> u64 {
        self.by_kind.iter().sum::<u64>() + self.other
    }

    /// Refused: blocked and not in shadow mode (request rows never are).
    fn refused(&self) -> u64 {
        self.get("block").saturating_sub(self.shadow)
    }

    fn to_json(self) -> Value {
        json!({
            "allow": self.by_kind[0], "block": self.by_kind[1], "redact": self.by_kind[2],
            "escalate": self.by_kind[3], "other": self.other, "shadow": self.shadow,
            "total": self.total(),
        })
    }
}

const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// Everything counted.
#[derive(Debug, Default)]
struct Tally {
    entries: u64,
    not_entries: u64,
    first_ts: Option<u64>,
    last_ts: Option<u64>,
    requests: Counts,
    outcomes: BTreeMap<String, u64>,
    checks_total: Counts,
    by_check: BTreeMap<String, Counts>,
    owners_req: BTreeMap<String, Counts>,
    owners_all: BTreeMap<String, Counts>,
    days_req: BTreeMap<u64, Counts>,
    days_all: BTreeMap<u64, Counts>,
}

fn owner_of(v: &Json<'_>) -> String {
    let t = v.get("owner_type").and_then(Json::as_str).unwrap_or("");
    let i = v.get("owner_id").and_then(Json::as_str).unwrap_or("");
    match (t, i) {
        ("unresolved", _) | ("", "") => "unresolved".to_owned(),
        (t, i) => format!("{t}:{i}"),
    }
}

impl Tally {
    fn add(&mut self, v: &Json<'_>, cutoff: Option<u64>) {
        let (Some(check), Some(decision)) = (
            v.get("check_name").and_then(Json::as_str),
            v.get("decision").and_then(Json::as_str),
        ) else {
            self.not_entries += 1;
            return;
        };
        let ts = match v.get("ts_ns") {
            Some(Json::Int(t)) => t.parse::<u64>().ok(),
            _ => None,
        };
        if let Some(cut) = cutoff {
            if ts.is_none_or(|t| t < cut) {
                return;
            }
        }
        self.entries += 1;
        if let Some(t) = ts {
            self.first_ts = Some(self.first_ts.map_or(t, |f| f.min(t)));
            self.last_ts = Some(self.last_ts.map_or(t, |l| l.max(t)));
        }
        let meta = v.get("metadata");
        let shadow = matches!(meta.and_then(|m| m.get("shadow")), Some(Json::Bool(true)));
        let owner = owner_of(v);
        let day = ts.map(|t| t / DAY_NS);
        if check == "pipeline.complete" {
            self.requests.add(decision, false);
            let outcome = meta
                .and_then(|m| m.get("outcome"))
                .and_then(Json::as_str)
                .unwrap_or("?");
            *self.outcomes.entry(outcome.to_owned()).or_default() += 1;
            self.owners_req
                .entry(owner.clone())
                .or_default()
                .add(decision, false);
            if let Some(d) = day {
                self.days_req.entry(d).or_default().add(decision, false);
            }
        } else {
            self.checks_total.add(decision, shadow);
            self.by_check
                .entry(check.to_owned())
                .or_default()
                .add(decision, shadow);
        }
        self.owners_all
            .entry(owner)
            .or_default()
            .add(decision, shadow);
        if let Some(d) = day {
            self.days_all.entry(d).or_default().add(decision, shadow);
        }
    }

    /// Per-request counting when the log has request rows, else per entry.
    fn basis(
        &self,
    ) -> (
        &'static str,
        &BTreeMap<String, Counts>,
        &BTreeMap<u64, Counts>,
    ) {
        if self.requests.total() > 0 {
            ("requests", &self.owners_req, &self.days_req)
        } else {
            ("entries", &self.owners_all, &self.days_all)
        }
    }

    fn top_refused(&self, n: usize) -> Vec<(String, u64)> {
        let (_, owners, _) = self.basis();
        let mut v: Vec<(String, u64)> = owners
            .iter()
            .map(|(o, c)| (o.clone(), c.refused()))
            .filter(|(_, n)| *n > 0)
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }

    /// One row per calendar day from the first to the last day with entries
    /// (days without entries included, so the chart's time axis is honest;
    /// only days with entries when the range exceeds two years).
    fn days(&self) -> Vec<(String, Counts)> {
        let (_, _, days) = self.basis();
        let (Some(first), Some(last)) = (days.keys().next(), days.keys().next_back()) else {
            return Vec::new();
        };
        let label = |d: u64| {
            format_ts(d.saturating_mul(DAY_NS))
                .chars()
                .take(10)
                .collect()
        };
        if last - first > 731 {
            return days.iter().map(|(d, c)| (label(*d), *c)).collect();
        }
        (*first..=*last)
            .map(|d| (label(d), days.get(&d).copied().unwrap_or_default()))
            .collect()
    }
}

fn log_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no *.jsonl audit logs", path.display());
    }
    Ok(files)
}

pub(super) fn run(a: Args) -> anyhow::Result<u8> {
    let cutoff = a
        .since
        .as_ref()
        .map(|s| crate::audit::now_ns().saturating_sub(s.nanos));
    let mut tally = Tally::default();
    let files = log_files(&a.path)?;
    for file in &files {
        for line in tail(file, usize::MAX, &Filter::default())? {
            if let Ok(v) = json::parse(&line) {
                tally.add(&v, cutoff);
            }
        }
    }
    let source = a.path.display().to_string();
    if let Some(plot) = &a.plot {
        let svg = svg(&tally, &source, a.since.as_ref());
        std::fs::write(plot, svg).with_context(|| format!("writing {}", plot.display()))?;
    }
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&tally, &source, &a))?
        ),
        Format::Markdown => print!("{}", markdown(&tally, &source, &a)),
    }
    Ok(0)
}

fn ts_text(t: Option<u64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(format_ts(t)))
}

fn to_json(t: &Tally, source: &str, a: &Args) -> Value {
    let (basis, owners, _) = t.basis();
    let by_check: serde_json::Map<String, Value> = t
        .by_check
        .iter()
        .map(|(k, c)| (k.clone(), c.to_json()))
        .collect();
    let by_owner: serde_json::Map<String, Value> = owners
        .iter()
        .map(|(k, c)| {
            let mut v = c.to_json();
            v["refused"] = c.refused().into();
            (k.clone(), v)
        })
        .collect();
    json!({
        "source": source,
        "since": a.since.as_ref().map(|s| s.text.clone()),
        "entries": t.entries,
        "skipped_lines": t.not_entries,
        "time_range": {"first": ts_text(t.first_ts), "last": ts_text(t.last_ts)},
        "requests": {
            "total": t.requests.total(),
            "allowed": t.requests.get("allow"),
            "refused": t.requests.refused(),
            "by_decision": t.requests.to_json(),
            "by_outcome": t.outcomes,
        },
        "check_decisions": t.checks_total.to_json(),
        "by_check": by_check,
        "basis": basis,
        "by_owner": by_owner,
        "top_refused_owners": t.top_refused(a.top).into_iter()
            .map(|(o, n)| json!({"owner": o, "refused": n})).collect::<Vec<_>>(),
        "by_day": t.days().into_iter().map(|(d, c)| {
            let mut v = c.to_json();
            v["day"] = d.into();
            v
        }).collect::<Vec<_>>(),
    })
}

/// Untrusted text in a Markdown table cell.
fn cell(s: &str) -> String {
    sanitize(
        &s.replace('\\', "\\\\")
            .replace('|', "\\|")
            .replace('`', "\\`"),
    )
}

fn markdown(t: &Tally, source: &str, a: &Args) -> String {
    let mut o = String::new();
    let (basis, owners, _) = t.basis();
    let _ = writeln!(o, "# signet audit report\n");
    let _ = writeln!(o, "- log: `{}`", cell(source));
    let _ = writeln!(
        o,
        "- window: {}",
        a.since
            .as_ref()
            .map_or("every entry".to_owned(), |s| format!("the last {}", s.text))
    );
    match (t.first_ts, t.last_ts) {
        (Some(f), Some(l)) => {
            let _ = writeln!(o, "- time range: {} to {}", format_ts(f), format_ts(l));
        }
        _ => {
            let _ = writeln!(o, "- time range: (no entries)");
        }
    }
    let _ = writeln!(
        o,
        "- entries: {}{}",
        t.entries,
        if t.not_entries > 0 {
            format!(
                " ({} lines without check_name/decision skipped)",
                t.not_entries
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "- requests: {} ({} allowed, {} refused, {} escalated, {} redacted)",
        t.requests.total(),
        t.requests.get("allow"),
        t.requests.refused(),
        t.requests.get("escalate"),
        t.requests.get("redact"),
    );
    let _ = writeln!(
        o,
        "- check decisions: {} ({} block, {} escalate, {} redact; {} of them in shadow mode, not enforced)\n",
        t.checks_total.total(),
        t.checks_total.get("block"),
        t.checks_total.get("escalate"),
        t.checks_total.get("redact"),
        t.checks_total.shadow
    );

    let _ = writeln!(o, "## Requests by decision\n");
    let _ = writeln!(o, "| decision | requests |\n|---|---:|");
    for k in KINDS {
        let _ = writeln!(o, "| {k} | {} |", t.requests.get(k));
    }
    if t.requests.other > 0 {
        let _ = writeln!(o, "| other | {} |", t.requests.other);
    }
    let _ = writeln!(o, "| **total** | **{}** |\n", t.requests.total());

    let _ = writeln!(o, "## Decisions by check\n");
    if t.by_check.is_empty() {
        let _ = writeln!(
            o,
            "(no check decisions: every request passed every check)\n"
        );
    } else {
        let _ = writeln!(
            o,
            "| check | block | escalate | redact | allow | other | of which shadow | total |\n|---|---:|---:|---:|---:|---:|---:|---:|"
        );
        let mut rows: Vec<_> = t.by_check.iter().collect();
        rows.sort_by(|x, y| y.1.total().cmp(&x.1.total()).then_with(|| x.0.cmp(y.0)));
        for (name, c) in rows {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(name),
                c.get("block"),
                c.get("escalate"),
                c.get("redact"),
                c.get("allow"),
                c.other,
                c.shadow,
                c.total()
            );
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## {} by owner\n", capitalise(basis));
    let _ = writeln!(
        o,
        "| owner | {basis} | allowed | refused | escalated | redacted |\n|---|---:|---:|---:|---:|---:|"
    );
    let mut rows: Vec<_> = owners.iter().collect();
    rows.sort_by(|x, y| y.1.total().cmp(&x.1.total()).then_with(|| x.0.cmp(y.0)));
    for (owner, c) in rows {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            cell(owner),
            c.total(),
            c.get("allow"),
            c.refused(),
            c.get("escalate"),
            c.get("redact")
        );
    }
    let _ = writeln!(o);

    let _ = writeln!(o, "## Top refused owners\n");
    let top = t.top_refused(a.top);
    if top.is_empty() {
        let _ = writeln!(o, "(nobody was refused)\n");
    } else {
        let _ = writeln!(o, "| # | owner | refused |\n|---:|---|---:|");
        for (i, (owner, n)) in top.iter().enumerate() {
            let _ = writeln!(o, "| {} | {} | {n} |", i + 1, cell(owner));
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## {} per day (UTC)\n", capitalise(basis));
    let _ = writeln!(
        o,
        "| day | allow | block | escalate | redact | total |\n|---|---:|---:|---:|---:|---:|"
    );
    for (day, c) in t.days() {
        let _ = writeln!(
            o,
            "| {day} | {} | {} | {} | {} | {} |",
            c.get("allow"),
            c.get("block"),
            c.get("escalate"),
            c.get("redact"),
            c.total()
        );
    }
    if let Some(p) = &a.plot {
        let _ = writeln!(o, "\nChart: `{}`", cell(&p.display().to_string()));
    }
    o
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Text or attribute value for XML.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in sanitize(s).chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A round axis maximum and step for `max` (1, 2 or 5 times a power of ten).
fn axis(max: u64) -> (u64, u64) {
    let max = max.max(1);
    let raw = max.div_ceil(4);
    let mut mag = 1u64;
    while mag.saturating_mul(10) <= raw {
        mag = mag.saturating_mul(10);
    }
    let step = [1, 2, 5, 10]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10 * mag);
    (step * max.div_ceil(step), step)
}

/// Stacking order, bottom first, and colours.
const STACK: [(&str, &str); 4] = [
    ("allow", "#4caf50"),
    ("redact", "#1e88e5"),
    ("escalate", "#fb8c00"),
    ("block", "#e53935"),
];

/// The daily stacked bar chart: one `<g class="day">` per calendar day.
fn svg(t: &Tally, source: &str, since: Option<&Since>) -> String {
    let (basis, _, _) = t.basis();
    let days = t.days();
    let n = days.len().max(1);
    let slot = (720 / n).clamp(12, 64) as u64;
    let bar = (slot * 7 / 10).max(6);
    let (left, top, plot_h, bottom) = (64u64, 56u64, 240u64, 96u64);
    let width = (left + slot * n as u64 + 24).max(480);
    let height = top + plot_h + bottom;
    let max = days.iter().map(|(_, c)| c.total()).max().unwrap_or(0);
    let (ymax, step) = axis(max);
    let y = |v: u64| top + plot_h - v * plot_h / ymax;
    let label_every = n.div_ceil(24).max(1);

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        o,
        r##"<title>signet audit report: {basis} per day by decision</title>
<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>
<text x="{left}" y="22" font-size="15" font-weight="bold">signet: {basis} per day, by decision (UTC)</text>
<text x="{left}" y="40" fill="#555555">{}{}</text>"##,
        xml(source),
        match (since, t.first_ts, t.last_ts) {
            (Some(s), _, _) => xml(&format!(" (last {})", s.text)),
            (None, Some(f), Some(l)) => xml(&format!(" ({} to {})", format_ts(f), format_ts(l))),
            _ => String::new(),
        }
    );
    // Y axis with gridlines.
    let _ = writeln!(o, r#"<g class="axis">"#);
    let mut v = 0;
    while v <= ymax {
        let yy = y(v);
        let _ = writeln!(
            o,
            r##"<line x1="{left}" y1="{yy}" x2="{}" y2="{yy}" stroke="#dddddd"/><text x="{}" y="{}" text-anchor="end">{v}</text>"##,
            width - 16,
            left - 6,
            yy + 4
        );
        v += step;
    }
    let _ = writeln!(
        o,
        r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#333333"/>
<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{basis}</text>
</g>"##,
        top + plot_h,
        top + plot_h / 2,
        top + plot_h / 2
    );
    // One bar group per day.
    for (i, (day, c)) in days.iter().enumerate() {
        let x = left + slot * i as u64 + (slot - bar) / 2;
        let parts: Vec<String> = STACK
            .iter()
            .map(|(k, _)| format!("{} {k}", c.get(k)))
            .collect();
        let _ = writeln!(
            o,
            r#"<g class="day" data-day="{day}" data-total="{}"><title>{day}: {} ({})</title>"#,
            c.total(),
            c.total(),
            parts.join(", ")
        );
        let mut base = 0;
        for (kind, colour) in STACK {
            let count = c.get(kind);
            if count == 0 {
                continue;
            }
            let (y1, y0) = (y(base + count), y(base));
            let _ = writeln!(
                o,
                r#"<rect class="{kind}" x="{x}" y="{y1}" width="{bar}" height="{}" fill="{colour}"><title>{day} {kind}: {count}</title></rect>"#,
                (y0 - y1).max(1)
            );
            base += count;
        }
        if i % label_every == 0 {
            let lx = x + bar / 2;
            let ly = top + plot_h + 14;
            let _ = writeln!(
                o,
                r#"<text x="{lx}" y="{ly}" text-anchor="end" transform="rotate(-45 {lx} {ly})">{}</text>"#,
                day.get(5..).unwrap_or(day)
            );
        }
        let _ = writeln!(o, "</g>");
    }
    if days.is_empty() {
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#555555">no entries</text>"##,
            left + (width - left) / 2,
            top + plot_h / 2
        );
    }
    // Legend.
    let _ = writeln!(o, r#"<g class="legend">"#);
    for (i, (kind, colour)) in STACK.iter().enumerate() {
        let lx = left + 110 * i as u64;
        let ly = height - 24;
        let _ = writeln!(
            o,
            r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{colour}"/><text x="{}" y="{ly}">{kind}</text>"#,
            ly - 10,
            lx + 16
        );
    }
    let _ = writeln!(o, "</g>\n</svg>");
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn row(ts: u64, check: &str, decision: &str, owner: (&str, &str), shadow: bool) -> String {
        format!(
            r#"{{"check_name":"{check}","decision":"{decision}","owner_type":"{}","owner_id":"{}","ts_ns":{ts},"metadata":{{"shadow":{shadow}}}}}"#,
            owner.0, owner.1
        )
    }

    #[test]
    fn since_parses_units_and_rejects_nonsense() {
        assert_eq!(parse_since("30m").unwrap().nanos, 1_800_000_000_000);
        assert_eq!(parse_since("7d").unwrap().nanos, 7 * DAY_NS);
        for bad in ["", "h", "24", "1y", "-1h", "99999999999999999999d"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tally_counts_requests_checks_owners_days_and_shadow() {
        let d0 = 20_000 * DAY_NS;
        let lines = [
            row(d0, "pipeline.complete", "allow", ("human", "alice"), false),
            row(
                d0 + 1,
                "owner_resolution",
                "block",
                ("unresolved", ""),
                false,
            ),
            row(
                d0 + 2,
                "pipeline.complete",
                "block",
                ("unresolved", ""),
                false,
            ),
            row(d0 + 3, "regex_content", "block", ("human", "alice"), true),
            row(
                2 * DAY_NS + d0,
                "pipeline.complete",
                "allow",
                ("human", "alice"),
                false,
            ),
        ];
        let mut t = Tally::default();
        for l in &lines {
            t.add(&json::parse(l).unwrap(), None);
        }
        assert_eq!(t.entries, 5);
        assert_eq!((t.requests.total(), t.requests.refused()), (3, 1));
        assert_eq!(t.by_check["owner_resolution"].get("block"), 1);
        assert_eq!(t.by_check["regex_content"].shadow, 1);
        assert_eq!(t.by_check["regex_content"].refused(), 0);
        assert_eq!(t.top_refused(5), vec![("unresolved".to_owned(), 1)]);
        let days = t.days();
        assert_eq!(days.len(), 3, "the empty middle day is kept");
        assert_eq!(days[1].1.total(), 0);
        assert_eq!(days[0].0, format_ts(d0)[..10]);
        let mut cut = Tally::default();
        for l in &lines {
            cut.add(&json::parse(l).unwrap(), Some(d0 + DAY_NS));
        }
        assert_eq!(cut.entries, 1);
    }

    #[test]
    fn svg_escapes_text_and_has_one_group_per_day() {
        let mut t = Tally::default();
        t.add(
            &json::parse(&row(5, "pipeline.complete", "allow", ("human", "a"), false)).unwrap(),
            None,
        );
        let s = svg(&t, "<evil & \"log\">", None);
        assert!(s.contains("&lt;evil &amp; &quot;log&quot;&gt;"));
        assert_eq!(s.matches(r#"<g class="day""#).count(), 1);
        assert_eq!(axis(0), (1, 1));
        assert_eq!(axis(7), (8, 2));
        assert_eq!(axis(130), (150, 50));
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        assert_eq!(cell("a|b`c\u{1b}"), "a\\|b\\`c\\u{1b}");
    }
}
