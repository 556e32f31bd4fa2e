//! signet: an OpenAI- and Anthropic-compatible LLM safety gate.
//!
//! | module | owns |
//! |---|---|
//! | [`approvals`] | human approval of escalations: pending approvals, single-use tokens |
//! | [`audit`] | the HMAC-chained audit log, its writer and verifier, receipts, keys |
//! | [`cli`] | the `signet` command line and the wiring of everything below |
//! | [`config`] | `signet.toml`: strict raw types → validated config |
//! | [`pipeline`] | stages, modes, priorities, timeouts, fail-closed policy, per-request runs |
//! | [`checks`] | the `Check` trait, verdicts, request context, registry, built-in checks |
//! | [`plugins`] | discovery and loading of plugin libraries, the FFI adapter |
//! | [`upstream`] | the reqwest client to the model server, streaming reads |
//! | [`server`] | the axum router, gated handlers, streaming, errors → HTTP, ops endpoints |
//! | [`protocol`] | OpenAI / Anthropic wire types, SSE, text and tool-call extraction |
//! | [`state`] | rate buckets, token budgets, approvals: in-memory and Redis backends |
pub mod approvals;
pub mod audit;
pub mod checks;
pub mod cli;
pub mod config;
pub mod pipeline;
pub mod plugins;
pub mod protocol;
pub mod server;
pub mod state;
pub mod upstream;
