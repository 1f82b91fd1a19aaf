//! The common token event — a token, with `generated_text` and `details` null or absent — read
//! in one pass by the scanner of `json::scan`: the hot path of a token stream.
//!
//! It takes an event only when it can vouch that the full parser ([`super::wire::EventView`])
//! would read the very same token and nothing else: every member it knows, once, with the type
//! serde expects, the others null. Anything else gives up — the final event, errors, escaped
//! keys, a member twice, a type serde would refuse, invalid JSON — and the full parser reads the
//! event and decides, so the answer, its errors and its counts are the same either way.

use std::borrow::Cow;
use std::ops::Range;

use super::wire::TokenView;
use crate::json::quoted_str;
use crate::json::scan::{self, GiveUp, ValueAt};

type Scan<T> = Result<T, GiveUp>;

/// What a common token event carries.
pub struct TokenEvent<'a> {
    pub token: TokenView<'a>,
    /// TGI's `top_tokens` for this position, unless absent or null.
    pub top_tokens: Option<&'a str>,
}

/// Reads `data` (one event's JSON) if it is a common token event.
pub fn token_event(data: &[u8]) -> Scan<TokenEvent<'_>> {
    let mut seen = Seen::default();
    let mut token = None;
    let mut top_tokens = None;
    scan::object_members_with(data, |key, value| {
        let Some(member) = event_member(&data[key]) else {
            return value.skip(data); // unknown to the full parser too: ignored
        };
        seen.first(member)?;
        match member {
            TOKEN => {
                let (spans, end) = token_spans(data, value)?;
                token = Some(spans);
                Ok(end)
            }
            TOP_TOKENS => {
                let end = value.skip(data)?;
                top_tokens = Some(value.start..end);
                Ok(end)
            }
            _ => null(data, value),
        }
    })?;
    // No token (or `"token": null`): not a common event.
    let token = token.ok_or(GiveUp)?.read(data)?;
    let top_tokens = match top_tokens {
        Some(span) => non_null(text(data, span)?),
        None => None,
    };
    Ok(TokenEvent { token, top_tokens })
}

/// `EventView`'s members, numbered for [`Seen`]. Each but `token` and `top_tokens` must be null
/// in a common event: the final event's, the counts and the errors.
const TOKEN: u32 = 0;
const TOP_TOKENS: u32 = 1;

fn event_member(key: &[u8]) -> Option<u32> {
    Some(match key {
        b"token" => TOKEN,
        b"top_tokens" => TOP_TOKENS,
        b"generated_text" => 2,
        b"details" => 3,
        b"inference_status" => 4,
        b"num_output_tokens" => 5,
        b"num_tokens" => 6,
        b"num_input_tokens" => 7,
        b"error" => 8,
        b"error_message" => 9,
        b"error_type" => 10,
        _ => return None,
    })
}

/// `TokenView`'s members, numbered for [`Seen`].
const TEXT: u32 = 0;
const LOGPROB: u32 = 1;
const SPECIAL: u32 = 2;

fn token_member(key: &[u8]) -> Option<u32> {
    Some(match key {
        b"text" => TEXT,
        b"logprob" => LOGPROB,
        b"special" => SPECIAL,
        _ => return None,
    })
}

/// The known members met so far in one object: serde refuses a struct field given twice.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    fn first(&mut self, member: u32) -> Scan<()> {
        let bit = 1 << member;
        if self.0 & bit != 0 {
            return Err(GiveUp);
        }
        self.0 |= bit;
        Ok(())
    }
}

/// Where a token's members stand in the event. A completed scan vouches for them as text.
#[derive(Default)]
struct TokenSpans {
    /// The string, quotes included.
    text: Option<Range<usize>>,
    logprob: Option<Range<usize>>,
    special: bool,
}

impl TokenSpans {
    fn read(self, data: &[u8]) -> Scan<TokenView<'_>> {
        let text_span = self.text.ok_or(GiveUp)?; // serde: a missing field
        Ok(TokenView {
            text: string(data, text_span)?,
            logprob: match self.logprob {
                Some(span) => non_null(text(data, span)?),
                None => None,
            },
            special: self.special,
        })
    }
}

/// The `token` object's members; returns them and where the object ends.
fn token_spans(data: &[u8], value: ValueAt) -> Scan<(TokenSpans, usize)> {
    let mut seen = Seen::default();
    let mut spans = TokenSpans::default();
    let end = value.object_with(data, |key, value| {
        let Some(member) = token_member(&data[key]) else {
            return value.skip(data); // `id`, say: not read
        };
        seen.first(member)?;
        match member {
            TEXT if data.get(value.start) == Some(&b'"') => {
                let end = value.skip(data)?;
                spans.text = Some(value.start..end);
                Ok(end)
            }
            LOGPROB => {
                let end = value.skip(data)?;
                spans.logprob = Some(value.start..end);
                Ok(end)
            }
            SPECIAL if data[value.start..].starts_with(b"false") => Ok(value.start + 5),
            SPECIAL if data[value.start..].starts_with(b"true") => {
                spans.special = true;
                Ok(value.start + 4)
            }
            _ => Err(GiveUp), // a type serde refuses: it says so
        }
    })?;
    Ok((spans, end))
}

/// A member that must be null. (The scan checks what follows a literal, as for any value.)
fn null(data: &[u8], value: ValueAt) -> Scan<usize> {
    if data[value.start..].starts_with(b"null") {
        Ok(value.start + 4)
    } else {
        Err(GiveUp)
    }
}

fn text(data: &[u8], span: Range<usize>) -> Scan<&str> {
    std::str::from_utf8(&data[span]).map_err(|_| GiveUp)
}

fn non_null(raw: &str) -> Option<&str> {
    (raw != "null").then_some(raw)
}

/// A JSON string's value, borrowed unless it has escapes; what the scanner lets by but serde
/// refuses (a lone surrogate) gives up, and the full parser then says so.
fn string(data: &[u8], span: Range<usize>) -> Scan<Cow<'_, str>> {
    quoted_str(text(data, span)?).ok_or(GiveUp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::reported::ErrorSource;
    use crate::dialect::tokens::wire::EventView;

    /// A common event's token, as (text, logprob, special, top_tokens).
    type Read = (String, Option<String>, bool, Option<String>);

    fn scanned(data: &[u8]) -> Result<Read, GiveUp> {
        let event = token_event(data)?;
        let token = event.token;
        Ok((
            token.text.into_owned(),
            token.logprob.map(str::to_owned),
            token.special,
            event.top_tokens.map(str::to_owned),
        ))
    }

    /// What the full parser reads from `data`, if it is a common event (a token; not final, no
    /// error): what the reader then does with it is the same code either way.
    fn parsed(data: &[u8]) -> Option<Read> {
        let view: EventView<'_> = serde_json::from_str(std::str::from_utf8(data).ok()?).ok()?;
        if view.is_final() || view.errors().upstream_error(ErrorSource::Stream).is_some() {
            return None;
        }
        let token = view.token?;
        let top = view.top_tokens.map(|t| t.get().to_owned());
        Some((
            token.text.into_owned(),
            token.logprob.map(str::to_owned),
            token.special,
            top.filter(|t| t != "null"),
        ))
    }

    #[rustfmt::skip]
    const COMMON: &[&[u8]] = &[
        br#"{"token": {"id": 29892, "text": ",", "logprob": -2.65625, "special": false}, "generated_text": null, "details": null}"#,
        br#"{"index":2,"token":{"id":89950,"text":" Learning","logprob":-0.39028463,"special":false},"generated_text":null,"details":null}"#,
        br#"{"token":{"id":1,"text":" Deep","logprob":-0.97,"special":false},"top_tokens":[{"id":1,"text":" Deep","logprob":-0.97,"special":false}],"generated_text":null,"details":null}"#,
        br#"{"token": {"text": " wh\u00e9re\n\"q\"", "logprob": null}, "top_tokens": null}"#,
        "{\"token\": {\"text\": \" ünï 😀\", \"special\": true, \"logprob\": -1E-5}}".as_bytes(),
        b"{\t\"token\" :\t{\"text\":\"\", \"id\": 1}\r\n, \"details\" : null }",
        br#"{"token": {"id": 123456789012345678901234567890, "text": " big", "logprob": -1.5e999, "special": false}}"#,
        br#"{"token": {"text": "a", "extra": {"text": "b", "text": "c"}}, "other": [1, {"x": null}], "other": 2}"#,
        br#"{"generated_text": null, "details": null, "inference_status": null, "num_output_tokens": null, "num_tokens": null, "num_input_tokens": null, "error": null, "error_message": null, "error_type": null, "token": {"text": "x", "logprob": "-1", "special": false}}"#,
    ];

    #[test]
    fn common_events_are_read_as_the_full_parser_reads_them() {
        for data in COMMON {
            let shown = String::from_utf8_lossy(data);
            assert_eq!(scanned(data).ok(), parsed(data), "{shown}");
            assert!(parsed(data).is_some(), "{shown}");
        }
    }

    /// Each goes to the full parser, which reads it (escaped keys, a final event, an error, a
    /// member it ignores but the scanner does not vouch for) or refuses it (the rest).
    #[rustfmt::skip]
    const REFUSED: &[&[u8]] = &[
        br#"{"tok\u0065n": {"text": " esc", "special": false}, "generated_text": null}"#,
        br#"{"token": {"t\u0065xt": " esc", "special": false}, "generated_text": null}"#,
        br#"{"token": {"text": " a"}, "token": {"text": " b"}}"#,
        br#"{"token": {"text": " a", "text": " b"}}"#,
        br#"{"token": {"text": " a", "special": false, "special": false}}"#,
        br#"{"token": {"text": " a", "logprob": -1, "logprob": -1}}"#,
        br#"{"token": {"text": " a"}, "details": null, "details": null}"#,
        br#"{"token": {"text": " a"}, "top_tokens": null, "top_tokens": []}"#,
        br#"{"token": {"text": "!"}, "generated_text": null, "details": {"finish_reason": "length"}}"#,
        br#"{"token": {"text": "!"}, "generated_text": "!", "details": null}"#,
        br#"{"token": {"text": " x"}, "error": "Model is overloaded", "error_type": "overloaded"}"#,
        br#"{"token": {"text": " x"}, "error_message": ""}"#,
        br#"{"token": {"text": " x"}, "inference_status": {"status": "running"}}"#,
        br#"{"token": {"text": " x"}, "num_tokens": 5}"#,
        br#"{"token": {"text": " x"},"#,
        br#"{"token": {"text": " x"}} x"#,
        br#"{"token": {"text": " x",}}"#,
        br#"{"token": {"text": " x"}}}"#,
        br#"{"token": {"text": " \ud800"}}"#,
        br#"{"token": {"text": " x", "logprob": 01}}"#,
        br#"{"token": {"text": " x", "logprob": -}}"#,
        br#"{"token": {"text": 5}}"#,
        br#"{"token": {"text": " x", "special": null}}"#,
        br#"{"token": {"text": " x", "special": 0}}"#,
        br#"{"token": {"text": " x", "special": falsey}}"#,
        br#"{"token": {"special": false}}"#,
        br#"{"token": null}"#,
        br#"{"token": [" x", -1, false]}"#,
        br#"{"generated_text": null}"#,
        br#"[{"token": {"text": " x"}}]"#,
        b"{\"token\": {\"text\": \" x\"},\x0c\"details\": null}",
        b"{\"token\": {\"text\": \" x\"},\xc2\xa0\"details\": null}",
        b"{\"token\": {\"text\": \" \x01\"}}",
        b"{\"token\": {\"text\": \" \xff\"}}",
        b"{\"token\": {\"text\": \" \xed\xa0\x80\"}}",
    ];

    #[test]
    fn everything_else_is_left_to_the_full_parser() {
        for data in REFUSED {
            assert_eq!(
                scanned(data),
                Err(GiveUp),
                "{}",
                String::from_utf8_lossy(data)
            );
        }
    }

    /// Random single-byte edits of common events (a fixed-seed generator, so a failure repeats):
    /// whatever the scanner reads, the full parser reads the same.
    #[test]
    fn mutated_events_are_never_read_otherwise() {
        let events = [COMMON[0], COMMON[2], COMMON[3]];
        let alphabet =
            b"{}[]\",:\\ -+.0123456789eEnulltrufasxid\t\r\x00\x1f\x7f\x80\xbf\xc3\xed\xff";
        let mut edits = crate::json::edits::OneByteEdits::new();
        let mut read = 0;
        for event in events {
            for _ in 0..20_000 {
                let bytes = edits.edit(event, alphabet);
                if let Ok(token) = scanned(&bytes) {
                    read += 1;
                    let shown = String::from_utf8_lossy(&bytes);
                    assert_eq!(Some(token), parsed(&bytes), "{shown}");
                }
            }
        }
        assert!(read > 10_000, "{read}");
    }
}
