//! Upstream dialects: one module per native wire format, each turning upstream frames into
//! OpenAI chunks (directly, or through the internal events of `crate::event`).

pub mod anthropic;
pub mod ollama;
pub mod openai;
pub mod reported;
pub mod tokens;

use crate::text::check_stops;
use crate::text::think::ThinkMode;
use crate::text::tools::ToolFormat;

/// The dialects a transcoder can read, by the name the Python side uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Any OpenAI-compatible server (`/v1/chat/completions`).
    OpenAi,
    /// Token events: DeepInfra's native `/v1/inference/{model}` and TGI's `/generate_stream`
    /// (and their JSON bodies), which share TGI's wire format.
    Tokens,
    /// Ollama's native `/api/chat` and `/api/generate` (NDJSON, or one JSON body).
    Ollama,
    /// Anthropic's Messages API `/v1/messages` (named SSE events, or one `Message` body).
    Anthropic,
}

/// Every dialect name, in the order `DIALECTS` exposes them to Python.
pub const DIALECT_NAMES: &[&str] = &["openai", "deepinfra", "tgi", "ollama", "anthropic"];

impl Dialect {
    pub fn from_name(name: &str) -> Result<Self, String> {
        match name {
            "openai" => Ok(Dialect::OpenAi),
            "deepinfra" | "tgi" => Ok(Dialect::Tokens),
            "ollama" => Ok(Dialect::Ollama),
            "anthropic" => Ok(Dialect::Anthropic),
            _ => Err(format!(
                "unknown transcoder dialect {name:?}; use one of: {}",
                DIALECT_NAMES.join(", ")
            )),
        }
    }
}

/// What the request asked for that a dialect generating raw text (rather than chat messages)
/// needs in order to shape the answer as OpenAI would. Dialects that get chat messages ignore it
/// (Ollama reads only `logprobs` and `prompt_tokens`, Anthropic only `prompt_tokens`).
#[derive(Debug, Clone)]
pub struct GenerationOptions {
    /// The client asked for logprobs.
    pub logprobs: bool,
    /// The answer ends at the first of these (the client's `stop` and the template's
    /// end-of-turn strings); never empty strings.
    pub stop: Vec<String>,
    pub think: ThinkMode,
    /// The tool-call markup to parse out of the text (`None`: the text is left as it is).
    pub tools: Option<ToolFormat>,
    /// The `max_new_tokens` sent upstream: infers `length` for a body without a finish reason.
    pub max_tokens: Option<u64>,
    /// The gateway's estimate of the prompt's tokens, for when the upstream reports none.
    pub prompt_tokens: Option<u64>,
}

impl Default for GenerationOptions {
    fn default() -> Self {
        GenerationOptions {
            logprobs: false,
            stop: Vec::new(),
            think: ThinkMode::Auto,
            tools: None,
            max_tokens: None,
            prompt_tokens: None,
        }
    }
}

impl GenerationOptions {
    /// Checks the options as given by the caller; the error says what to change.
    pub fn new(
        logprobs: bool,
        stop: Vec<String>,
        think: &str,
        tools: Option<&str>,
        max_tokens: Option<u64>,
        prompt_tokens: Option<u64>,
    ) -> Result<Self, String> {
        check_stops(&stop)?;
        Ok(GenerationOptions {
            logprobs,
            stop,
            think: ThinkMode::from_name(think)?,
            tools: tools.map(ToolFormat::from_name).transpose()?,
            max_tokens,
            prompt_tokens,
        })
    }
}
