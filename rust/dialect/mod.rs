//! Upstream dialects: one module per native wire format, each turning upstream frames into
//! OpenAI chunks (directly, or through the internal events of `crate::event`).

pub mod openai;

/// The dialects a transcoder can read, by the name the Python side uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Any OpenAI-compatible server (`/v1/chat/completions`).
    OpenAi,
}

/// Every dialect name, in the order `DIALECTS` exposes them to Python.
pub const DIALECT_NAMES: &[&str] = &["openai"];

impl Dialect {
    pub fn from_name(name: &str) -> Result<Self, String> {
        match name {
            "openai" => Ok(Dialect::OpenAi),
            _ => Err(format!(
                "unknown transcoder dialect {name:?}; use one of: {}",
                DIALECT_NAMES.join(", ")
            )),
        }
    }
}
