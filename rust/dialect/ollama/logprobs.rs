//! Ollama's per-line `logprobs` (`[{token, logprob, bytes?, top_logprobs?}]`) as OpenAI
//! `logprobs.content` entries: `{"token","logprob","bytes","top_logprobs":[{"token","logprob",
//! "bytes"}]}`. `bytes` is Ollama's when sent (it is exact for tokens that split a UTF-8
//! character), else the token's UTF-8 bytes.

use serde_json::value::RawValue;

use super::wire::LogprobView;
use crate::json::{for_each_element, write_str};

/// Why an entry could not be written: the upstream sent something that is not Ollama's shape.
#[derive(Debug)]
pub struct Malformed;

/// Writes `[entries]` for the line's `logprobs` member (`[]` when it has none) into `out`.
pub fn write_entries(out: &mut Vec<u8>, logprobs: Option<&RawValue>) -> Result<(), Malformed> {
    out.push(b'[');
    if let Some(logprobs) = logprobs.filter(|raw| raw.get() != "null") {
        let mut result = Ok(());
        for_each_element(logprobs.get().as_bytes(), |i, entry: LogprobView<'_>| {
            if result.is_err() {
                return;
            }
            if i > 0 {
                out.push(b',');
            }
            result = write_entry(out, &entry, true);
        })
        .map_err(|_| Malformed)?;
        result?;
    }
    out.push(b']');
    Ok(())
}

fn write_entry(
    out: &mut Vec<u8>,
    entry: &LogprobView<'_>,
    with_top: bool,
) -> Result<(), Malformed> {
    out.extend_from_slice(b"{\"token\":");
    write_str(out, &entry.token);
    out.extend_from_slice(b",\"logprob\":");
    let logprob = entry.logprob.get();
    if !logprob.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(Malformed);
    }
    out.extend_from_slice(logprob.as_bytes());
    out.extend_from_slice(b",\"bytes\":");
    match entry.bytes.filter(|raw| raw.get() != "null") {
        Some(bytes) if bytes.get().starts_with('[') => {
            out.extend_from_slice(bytes.get().as_bytes())
        }
        Some(_) => return Err(Malformed),
        None => write_bytes(out, &entry.token),
    }
    if with_top {
        out.extend_from_slice(b",\"top_logprobs\":[");
        if let Some(top) = entry.top_logprobs.filter(|raw| raw.get() != "null") {
            let mut result = Ok(());
            for_each_element(top.get().as_bytes(), |i, alternative: LogprobView<'_>| {
                if result.is_err() {
                    return;
                }
                if i > 0 {
                    out.push(b',');
                }
                result = write_entry(out, &alternative, false);
            })
            .map_err(|_| Malformed)?;
            result?;
        }
        out.push(b']');
    }
    out.push(b'}');
    Ok(())
}

fn write_bytes(out: &mut Vec<u8>, token: &str) {
    out.push(b'[');
    for (i, byte) in token.bytes().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(byte.to_string().as_bytes());
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(json: &str) -> Result<String, Malformed> {
        let raw = RawValue::from_string(json.to_owned()).unwrap();
        let mut out = Vec::new();
        write_entries(&mut out, Some(&raw))?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn entries_in_openai_shape() {
        assert_eq!(
            entries(
                r#"[{"token":"é","logprob":-0.25,"top_logprobs":[{"token":"é","logprob":-0.25,"bytes":[195,169]},{"token":"e","logprob":-2}]},{"token":"\ufffd","logprob":-1e-3,"bytes":[240,159]}]"#
            )
            .unwrap(),
            r#"[{"token":"é","logprob":-0.25,"bytes":[195,169],"top_logprobs":[{"token":"é","logprob":-0.25,"bytes":[195,169]},{"token":"e","logprob":-2,"bytes":[101]}]},{"token":"�","logprob":-1e-3,"bytes":[240,159],"top_logprobs":[]}]"#
        );
        assert_eq!(entries("[]").unwrap(), "[]");
        assert_eq!(entries("null").unwrap(), "[]");
        let mut out = Vec::new();
        write_entries(&mut out, None).unwrap();
        assert_eq!(out, b"[]");
    }

    #[test]
    fn other_shapes_are_malformed() {
        for bad in [
            r#"{"token":"a"}"#,
            r#"[{"token":"a"}]"#,
            r#"[{"token":"a","logprob":"x"}]"#,
            r#"[{"token":"a","logprob":null}]"#,
            r#"[{"token":"a","logprob":-1,"bytes":"YQ=="}]"#,
            r#"[{"token":"a","logprob":-1,"top_logprobs":[{"token":"b"}]}]"#,
        ] {
            assert!(entries(bad).is_err(), "{bad}");
        }
    }
}
