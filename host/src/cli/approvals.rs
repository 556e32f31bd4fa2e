//! `signet approvals list | show | approve | deny`: the escalation workflow
//! from a terminal. Every command calls the running gate's admin API
//! (`--self URL`, default `http://127.0.0.1:8443`) with the bearer token in
//! `SIGNET_ADMIN_TOKEN`; nothing here touches state directly, so what an
//! approver does is authenticated and audited by the gate.
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// Act on escalations: list pending approvals, approve one (mint a single-use
/// token the caller re-sends in X-Signet-Approval), or deny one.
///
/// Needs the gate's admin API ([admin] token_env in its config) and the token
/// in SIGNET_ADMIN_TOKEN. Example:
///   signet approvals list
///   signet approvals approve 3f2c… --ttl 15m --approver human:bob
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
    /// The running gate (default http://127.0.0.1:8443).
    #[arg(long = "self", global = true, env = "SIGNET_SELF", value_name = "URL")]
    self_url: Option<String>,
    /// Print the API's JSON answer instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Approvals, newest first (pending only unless --all).
    List {
        /// Include approved, denied, expired and consumed ones.
        #[arg(long)]
        all: bool,
    },
    /// One approval with its context.
    Show {
        /// Approval id.
        id: String,
    },
    /// Approve: mint a single-use token bound to this approval's owner and subject.
    Approve {
        /// Approval id.
        id: String,
        /// Token lifetime: 90s, 15m, 1h, 1d, or seconds (default: the gate's token_ttl_s).
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<u64>,
        /// Who approves (default: SIGNET_APPROVER, else human:$USER).
        #[arg(long)]
        approver: Option<String>,
        /// Print only the token (for scripts).
        #[arg(long, short)]
        quiet: bool,
    },
    /// Deny: the escalated request or tool call stays refused.
    Deny {
        /// Approval id.
        id: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
        /// Who denies (default: SIGNET_APPROVER, else human:$USER).
        #[arg(long)]
        approver: Option<String>,
    },
}

/// `15m` → 900.
fn parse_ttl(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86_400),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; use e.g. 90s, 15m, 1h, 1d or seconds"))?;
    match n.checked_mul(mult) {
        Some(0) | None => Err(format!("{s:?} must be at least 1 second")),
        Some(v) => Ok(v),
    }
}

fn approver(given: Option<String>) -> anyhow::Result<String> {
    if let Some(a) = given.filter(|a| !a.trim().is_empty()) {
        return Ok(a);
    }
    if let Ok(a) = std::env::var("SIGNET_APPROVER") {
        if !a.trim().is_empty() {
            return Ok(a);
        }
    }
    match std::env::var("USER") {
        Ok(u) if !u.trim().is_empty() => Ok(format!("human:{u}")),
        _ => bail!("who is deciding? pass --approver human:NAME or set SIGNET_APPROVER"),
    }
}

struct Api {
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let (status, v) =
            crate::upstream::admin_call(method, &url, &self.token, body, Duration::from_secs(15))
                .await
                .map_err(anyhow::Error::msg)?;
        if (200..300).contains(&status) {
            return Ok(v);
        }
        let detail = v
            .get("detail")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        bail!("the gate answered {status}: {detail}")
    }
}

fn subject(v: &Value) -> String {
    let s = &v["subject"];
    match s["kind"].as_str() {
        Some("tool_call") => format!(
            "tool {} args {}",
            s["name"].as_str().unwrap_or("?"),
            short(s["args_sha256"].as_str().unwrap_or("?"))
        ),
        Some("request") => format!(
            "request {}",
            short(s["fingerprint"].as_str().unwrap_or("?"))
        ),
        _ => "?".into(),
    }
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

fn print_one(v: &Value) {
    let g = |k: &str| v[k].as_str().unwrap_or("").to_string();
    println!("approval  {}", g("id"));
    println!("status    {}", g("status"));
    println!("owner     {}", g("owner"));
    println!("check     {} ({})", g("check"), g("stage"));
    println!("reason    {}", g("reason"));
    println!("covers    {}", subject(v));
    println!("policy    {}", g("policy_version"));
    println!(
        "created   {}   expires {}",
        g("created_at"),
        g("expires_at")
    );
    if !g("decided_by").is_empty() {
        println!("decided   by {} at {}", g("decided_by"), g("decided_at"));
    }
    if !g("deny_reason").is_empty() {
        println!("denied    {}", g("deny_reason"));
    }
    println!(
        "context   {}",
        serde_json::to_string_pretty(&v["context"]).unwrap_or_default()
    );
}

/// Run `signet approvals …`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let token = std::env::var("SIGNET_ADMIN_TOKEN").unwrap_or_default();
    if token.trim().is_empty() {
        bail!("set SIGNET_ADMIN_TOKEN to the gate's admin token (the value of the env var its [admin] token_env names)");
    }
    let base = a
        .self_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8443".into())
        .trim_end_matches('/')
        .to_string();
    let api = Api {
        base,
        token: token.trim().to_string(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_cmd(&api, a.cmd, a.json))
}

async fn run_cmd(api: &Api, cmd: Cmd, as_json: bool) -> anyhow::Result<u8> {
    let pretty = |v: &Value| println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    match cmd {
        Cmd::List { all } => {
            let q = if all { "" } else { "?status=pending" };
            let v = api
                .call("GET", &format!("/signet/approvals{q}"), None)
                .await?;
            if as_json {
                pretty(&v);
                return Ok(0);
            }
            let items = v["approvals"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!(
                    "{}",
                    if all {
                        "no approvals"
                    } else {
                        "no pending approvals"
                    }
                );
            }
            for i in &items {
                println!(
                    "{}  {:<9} {:<22} {:<20} {}  (expires {})",
                    i["id"].as_str().unwrap_or("?"),
                    i["status"].as_str().unwrap_or("?"),
                    i["owner"].as_str().unwrap_or("?"),
                    i["check"].as_str().unwrap_or("?"),
                    subject(i),
                    i["expires_at"].as_str().unwrap_or("?"),
                );
            }
        }
        Cmd::Show { id } => {
            let v = api
                .call("GET", &format!("/signet/approvals/{id}"), None)
                .await?;
            if as_json {
                pretty(&v);
            } else {
                print_one(&v);
            }
        }
        Cmd::Approve {
            id,
            ttl,
            approver: who,
            quiet,
        } => {
            let body = json!({"approver": approver(who)?, "ttl_s": ttl});
            let v = api
                .call(
                    "POST",
                    &format!("/signet/approvals/{id}/approve"),
                    Some(body),
                )
                .await?;
            let token = v["token"].as_str().unwrap_or("");
            if quiet {
                println!("{token}");
            } else if as_json {
                pretty(&v);
            } else {
                println!(
                    "approved {} (by {}); token valid until {}",
                    id,
                    v["approval"]["decided_by"].as_str().unwrap_or("?"),
                    v["token_expires_at"].as_str().unwrap_or("?")
                );
                println!("the caller re-sends the same request with this header (single use):");
                println!("X-Signet-Approval: {token}");
            }
        }
        Cmd::Deny {
            id,
            reason,
            approver: who,
        } => {
            let body = json!({"approver": approver(who)?, "reason": reason});
            let v = api
                .call("POST", &format!("/signet/approvals/{id}/deny"), Some(body))
                .await?;
            if as_json {
                pretty(&v);
            } else {
                println!(
                    "denied {} (by {})",
                    id,
                    v["approval"]["decided_by"].as_str().unwrap_or("?")
                );
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_forms() {
        assert_eq!(parse_ttl("900"), Ok(900));
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("15m"), Ok(900));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("2d"), Ok(172_800));
        assert!(parse_ttl("0m").is_err());
        assert!(parse_ttl("soon").is_err());
        assert!(parse_ttl("").is_err());
    }
}
