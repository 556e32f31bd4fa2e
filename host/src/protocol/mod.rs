//! Wire formats: OpenAI and Anthropic request/response shapes, SSE parsing,
//! and the extraction of semantic text and tool calls that checks look at.
//! Depends on serde only.
//!
//! | file | owns |
//! |---|---|
//! | `text.rs` | semantic text of a request (messages, system prompts, tool definitions and results) and per-part rewriting |
pub mod text;
