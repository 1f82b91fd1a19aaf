//! What every dialect says the same way about the end of an answer: the error an upstream
//! reported (where it was found, its code, the wording of its message) and the usage object.

use std::fmt::Write;

/// Where an upstream error was found; decides the `code` the client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// Inside a stream that had already started (`upstream_stream_error`).
    Stream,
    /// A whole body answered with status 200 (`upstream_reported_error`).
    Body,
}

/// The advice for an error that may pass: retry, or go elsewhere.
pub const RETRY_ADVICE: &str =
    "Retry the request, or use another model or provider if it keeps happening.";

/// The `code` and advice of an upstream error: `upstream_overloaded` and "retry later" when the
/// upstream said it is overloaded (each dialect has its own way of saying so), else the
/// source's code and [`RETRY_ADVICE`].
pub fn code_and_advice(overloaded: bool, source: ErrorSource) -> (&'static str, &'static str) {
    match (overloaded, source) {
        (true, _) => (
            "upstream_overloaded",
            "The model is busy: retry later, or use another model or provider.",
        ),
        (false, ErrorSource::Stream) => ("upstream_stream_error", RETRY_ADVICE),
        (false, ErrorSource::Body) => ("upstream_reported_error", RETRY_ADVICE),
    }
}

/// `The upstream reported an error[ of type "KIND"][: TEXT]. ADVICE`; the upstream's text is
/// quoted without its final full stops.
pub fn error_message(kind: Option<&str>, text: Option<&str>, advice: &str) -> String {
    let mut message = String::from("The upstream reported an error");
    if let Some(kind) = kind {
        // Writing into a String cannot fail.
        let _ = write!(message, " of type {kind:?}");
    }
    if let Some(text) = text {
        message.push_str(": ");
        message.push_str(text.trim_end_matches('.'));
    }
    message.push_str(". ");
    message.push_str(advice);
    message
}

/// `{"prompt_tokens":P,"completion_tokens":C,"total_tokens":P+C[...][,"estimated":true]}`, with
/// whatever members `details` writes (each starting with a comma) before the estimate mark.
pub fn usage_json(
    prompt: u64,
    completion: u64,
    estimated: bool,
    details: impl FnOnce(&mut String),
) -> String {
    let mut out = String::with_capacity(160);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{}",
        prompt.saturating_add(completion)
    );
    details(&mut out);
    if estimated {
        out.push_str(",\"estimated\":true");
    }
    out.push('}');
    out
}
