//! `signet consent revoke|restore|status OWNER`: withdraw (or give back) an
//! owner's consent in the shared state backend, talking to Redis directly —
//! no gate needs to be running, and every replica's `continuing_consent`
//! sees the change on its next revalidated chunk.
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use super::assemble::{load_config, redis_backend};
use super::ConfigArg;
use crate::checks::revocation_entry;
use crate::state::{RedisState, StateBackend};

/// `signet consent ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ConsentCmd {
    /// Withdraw OWNER's consent: streams of that owner are stopped by
    /// `continuing_consent` on every gate sharing this Redis backend.
    Revoke {
        /// `human:alice`, `agent:bot`, `policy:nightly`, or a bare `alice` (every owner type).
        owner: String,
        /// How long the revocation lasts (`90s`, `15m`, `1h`, `7d`; default: until restored).
        #[arg(long)]
        ttl: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Lift a revocation of OWNER.
    Restore {
        /// The owner, as given to `revoke`.
        owner: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Is OWNER revoked (directly, or by a bare-id revocation)? Exit 0 yes, 3 no.
    Status {
        /// The owner to look up.
        owner: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// `90s`, `15m`, `1h`, `7d`, or plain seconds, in milliseconds (> 0).
fn parse_ttl(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, unit_ms) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1_000),
        Some((i, 'm')) => (&s[..i], 60_000),
        Some((i, 'h')) => (&s[..i], 3_600_000),
        Some((i, 'd')) => (&s[..i], 86_400_000),
        _ => (s, 1_000),
    };
    match num.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n.saturating_mul(unit_ms)),
        _ => bail!("--ttl {s:?}: use a positive duration such as 90s, 15m, 1h or 7d"),
    }
}

fn owner_entry(raw: &str) -> anyhow::Result<String> {
    match revocation_entry(raw) {
        Some(e) if !raw.contains('#') => Ok(e),
        _ => bail!(
            "{raw:?} is not an owner: use human:<id>, agent:<id>, policy:<name>, or a bare <id> for every owner type"
        ),
    }
}

fn backend(config: &ConfigArg) -> anyhow::Result<Arc<RedisState>> {
    let cfg = load_config(config)?;
    match redis_backend(&cfg)? {
        Some(r) => Ok(r),
        None => bail!(
            "the config uses the memory state backend, which lives inside each gate process: nothing outside it can revoke consent.\nfix: set [state] backend = \"redis\" (shared by every replica), or list the owner in continuing_consent's revocation_file"
        ),
    }
}

fn shown_ttl(ttl_ms: u64) -> String {
    if ttl_ms == 0 {
        "until restored".into()
    } else {
        format!("for {}", humanize(Duration::from_millis(ttl_ms)))
    }
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Run a consent command; the exit code.
pub(super) fn run(cmd: ConsentCmd) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cmd {
            ConsentCmd::Revoke { owner, ttl, config } => {
                let who = owner_entry(&owner)?;
                let ttl_ms = ttl.as_deref().map(parse_ttl).transpose()?.unwrap_or(0);
                let r = backend(&config)?;
                r.revoke_owner(who.clone(), ttl_ms)
                    .wait()
                    .await
                    .with_context(|| format!("revoking {who}"))?;
                println!(
                    "revoked {who} {} in {}; gates running continuing_consent stop this owner's streams at the next revalidated chunk",
                    shown_ttl(ttl_ms),
                    r.shown_url()
                );
                Ok(0)
            }
            ConsentCmd::Restore { owner, config } => {
                let who = owner_entry(&owner)?;
                let r = backend(&config)?;
                let was = r
                    .restore_owner(who.clone())
                    .wait()
                    .await
                    .with_context(|| format!("restoring {who}"))?;
                if was {
                    println!("restored {who}");
                } else {
                    println!("{who} was not revoked (nothing to restore)");
                }
                Ok(0)
            }
            ConsentCmd::Status { owner, config } => {
                let who = owner_entry(&owner)?;
                let mut names = vec![who.clone()];
                if let Some((kind, id)) = who.split_once(':') {
                    if kind != "*" {
                        names.push(format!("*:{id}"));
                    }
                }
                let r = backend(&config)?;
                let revoked = r
                    .owner_revoked(names)
                    .wait()
                    .await
                    .with_context(|| format!("looking up {who}"))?;
                println!("{who}: {}", if revoked { "revoked" } else { "not revoked" });
                Ok(if revoked { 0 } else { 3 })
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_and_owners_parse() {
        assert_eq!(parse_ttl("90s").unwrap(), 90_000);
        assert_eq!(parse_ttl("15m").unwrap(), 900_000);
        assert_eq!(parse_ttl("1h").unwrap(), 3_600_000);
        assert_eq!(parse_ttl("7d").unwrap(), 7 * 86_400_000);
        assert_eq!(parse_ttl("30").unwrap(), 30_000);
        for bad in ["", "0", "-1h", "1w", "h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
        assert_eq!(owner_entry("human:alice").unwrap(), "human:alice");
        assert_eq!(owner_entry(" \u{0430}lice ").unwrap(), "*:alice");
        assert!(owner_entry("").is_err());
        assert!(owner_entry("human:a#b").is_err());
        assert_eq!(shown_ttl(0), "until restored");
        assert_eq!(shown_ttl(3_600_000), "for 1h");
    }
}
