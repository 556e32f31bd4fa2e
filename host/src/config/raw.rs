//! The file as written: strict serde types (`deny_unknown_fields`), every key
//! optional. Validation into [`super::Config`] happens in `mod.rs`.
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub server: Option<RawServer>,
    pub upstream: Option<RawUpstream>,
    pub audit: Option<RawAudit>,
    pub receipts: Option<RawReceipts>,
    pub plugins: Option<RawPlugins>,
    pub state: Option<RawState>,
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub checks: Vec<RawCheck>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub strict_errors: Option<bool>,
    pub shadow: Option<bool>,
    pub max_request_body_bytes: Option<u64>,
    pub log_format: Option<super::LogFormat>,
    pub shutdown_grace_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub url: Option<String>,
    pub api_key_env: Option<String>,
    pub timeout_ms: Option<u64>,
    pub label: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub path: Option<String>,
    pub key_id: Option<String>,
    pub hmac_secret_env: Option<String>,
    pub fsync: Option<super::Fsync>,
    pub keyring: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReceipts {
    pub alg: Option<super::ReceiptAlg>,
    pub private_key_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlugins {
    pub dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    pub backend: Option<super::StateBackend>,
    pub url: Option<String>,
    pub timeout_ms: Option<u64>,
    pub key_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub token_env: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_timeout_ms: Option<u64>,
    pub pending_ttl_s: Option<u64>,
    pub token_ttl_s: Option<u64>,
    pub max_token_ttl_s: Option<u64>,
    pub max_approvals: Option<usize>,
    pub sweep_interval_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    pub kind: String,
    pub name: Option<String>,
    pub mode: Option<super::CheckMode>,
    pub priority: Option<i32>,
    pub on_error: Option<super::ErrorPolicy>,
    pub timeout_ms: Option<u64>,
    pub config: Option<toml::Table>,
}
