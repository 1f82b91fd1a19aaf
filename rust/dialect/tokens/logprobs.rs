//! OpenAI `logprobs.content` entries from generated tokens:
//! `{"token":text,"logprob":lp,"bytes":[...],"top_logprobs":[{"token","logprob","bytes"}...]}`.
//!
//! An entry goes out with the text its token produced: it waits while the stop-string stage
//! holds that text back, and is dropped when a stop string cut the answer before its token
//! (the stop string's own tokens are not part of the answer either).

use std::borrow::Cow;
use std::collections::VecDeque;

use super::wire::TokenView;
use crate::json::{for_each_element, write_str};

/// Appends one entry; `top` is TGI's `top_tokens` array for this position, if sent.
pub fn write_entry(
    out: &mut Vec<u8>,
    token: &TokenView<'_>,
    top: Option<&str>,
) -> Result<(), serde_json::Error> {
    write_token(out, token);
    out.extend_from_slice(b",\"top_logprobs\":[");
    if let Some(top) = top.filter(|&t| t != "null") {
        for_each_element(top.as_bytes(), |position, alternative: TokenView<'_>| {
            if position > 0 {
                out.push(b',');
            }
            write_token(out, &alternative);
            out.push(b'}');
        })?;
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// `{"token":..,"logprob":..,"bytes":[..]` (left open).
fn write_token(out: &mut Vec<u8>, token: &TokenView<'_>) {
    out.extend_from_slice(b"{\"token\":");
    match &token.text {
        // Borrowed text had no escapes in the input, and JSON forbids raw control characters
        // in strings: its bytes are already what `write_str` would write between the quotes.
        Cow::Borrowed(text) => {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        Cow::Owned(text) => write_str(out, text),
    }
    out.extend_from_slice(b",\"logprob\":");
    out.extend_from_slice(token.logprob.unwrap_or("null").as_bytes());
    out.extend_from_slice(b",\"bytes\":[");
    for (i, byte) in token.text.bytes().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_byte(out, byte);
    }
    out.push(b']');
}

fn write_byte(out: &mut Vec<u8>, byte: u8) {
    if byte >= 100 {
        out.push(b'0' + byte / 100);
    }
    if byte >= 10 {
        out.push(b'0' + byte / 10 % 10);
    }
    out.push(b'0' + byte % 10);
}

/// Where an entry's token started in the whole generated text.
struct Mark {
    start: u64,
    /// The token had no text (it then goes out as soon as its position has).
    empty: bool,
    /// Where the entry ends in the queue's buffer.
    end: usize,
}

/// Entries waiting for their text to pass the stop-string stage.
#[derive(Default)]
pub struct EntryQueue {
    buffer: Vec<u8>,
    marks: VecDeque<Mark>,
}

impl EntryQueue {
    /// Queues the entry of a token whose text starts at `start` in the whole text.
    pub fn push(
        &mut self,
        start: u64,
        token: &TokenView<'_>,
        top: Option<&str>,
    ) -> Result<(), serde_json::Error> {
        let mark = self.buffer.len();
        if let Err(error) = write_entry(&mut self.buffer, token, top) {
            self.buffer.truncate(mark);
            return Err(error);
        }
        self.marks.push_back(Mark {
            start,
            empty: token.text.is_empty(),
            end: self.buffer.len(),
        });
        Ok(())
    }

    /// Moves the entries whose text has been released (`released` bytes so far) to `out` as
    /// comma-separated array items, and drops those after a stop-string `cut`.
    pub fn release(&mut self, released: u64, cut: Option<u64>, out: &mut Vec<u8>) {
        let mut taken = 0;
        let mut from = 0;
        while let Some(mark) = self.marks.front() {
            if cut.is_some_and(|cut| mark.start >= cut) {
                self.marks.clear();
                break;
            }
            if !(mark.start < released || mark.empty && mark.start <= released) {
                break;
            }
            if out.last().is_some_and(|&b| b != b'[') {
                out.push(b',');
            }
            out.extend_from_slice(&self.buffer[from..mark.end]);
            from = mark.end;
            taken = mark.end;
            self.marks.pop_front();
        }
        if self.marks.is_empty() {
            self.buffer.clear();
        } else if taken > 0 {
            self.buffer.drain(..taken);
            for mark in &mut self.marks {
                mark.end -= taken;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(json: &str) -> TokenView<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn entry_shape_with_and_without_top_tokens() {
        let mut out = Vec::new();
        let top = r#"[{"id":1,"text":"é","logprob":-0.5,"special":false},{"id":2,"text":"a","logprob":-1.25,"special":false}]"#;
        write_entry(
            &mut out,
            &token(r#"{"id": 29892, "text": "é,", "logprob": -2.65625, "special": false}"#),
            Some(top),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"token":"é,","logprob":-2.65625,"bytes":[195,169,44],"top_logprobs":[{"token":"é","logprob":-0.5,"bytes":[195,169]},{"token":"a","logprob":-1.25,"bytes":[97]}]}"#
        );
        let mut out = Vec::new();
        write_entry(&mut out, &token(r#"{"text":"\n","logprob":null}"#), None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"token":"\n","logprob":null,"bytes":[10],"top_logprobs":[]}"#
        );
    }

    #[test]
    fn entries_follow_their_text_and_stop_at_the_cut() {
        let mut queue = EntryQueue::default();
        // "Hi" "<|" "e" "" "|>": the stop string "<|e|>" starts at byte 2.
        for (start, text) in [(0, "Hi"), (2, "<|"), (4, "e"), (5, ""), (5, "|>")] {
            let json = format!(r#"{{"text":"{text}","logprob":-1}}"#);
            queue.push(start, &token(&json), None).unwrap();
        }
        let mut out = b"[".to_vec();
        queue.release(0, None, &mut out);
        assert_eq!(out, b"[");
        queue.release(2, None, &mut out);
        assert_eq!(out.iter().filter(|&&b| b == b'{').count(), 1);
        queue.release(2, Some(2), &mut out);
        assert_eq!(out.iter().filter(|&&b| b == b'{').count(), 1);
        assert!(queue.marks.is_empty() && queue.buffer.is_empty());
    }
}
