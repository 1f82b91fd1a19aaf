//! The JSON of one tool call, read as it arrives, in the two shapes the formats use:
//!
//! - [`CallObject`]: `{"name": "f", "arguments": {...}}` (hermes, llama3 with `parameters`,
//!   mistral's array elements);
//! - [`ArgumentsObject`]: just the arguments object, the name having come as text before it
//!   (deepseek, mistral's `name[ARGS]{...}`).
//!
//! The header (index, name) goes out only once the call is certain: its name is known and its
//! arguments have started (or the object ended without any: `"{}"`). From then on the
//! arguments object goes out as it arrives, its raw text, validated byte by byte, so what was
//! sent is always the start of valid JSON. A call that breaks after its header (bad JSON, the
//! answer ends inside it) gets the closing its arguments need to stay valid JSON (see
//! [`JsonCursor::closing`]): the values it had, cut short. Before the header, a failure is the
//! caller's to undo: nothing went out.

use serde::de::IgnoredAny;

use super::cursor::{JsonCursor, Role};
use crate::text::TextSink;

/// How far a call got in one piece of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// All of the text was taken; the call goes on.
    More,
    /// The call ended; the text from this position on follows it.
    Done(usize),
    /// The text at this position is not part of a valid call. If the header had gone out, the
    /// call's arguments have been closed (it counts as emitted).
    Failed(usize),
}

/// A call being read, in either JSON shape: what the formats need to drive it.
pub trait CallReader {
    /// Reads the next piece of the call's text, sending what may go out.
    fn feed(&mut self, text: &str, sink: &mut impl TextSink) -> Fed;
    /// Whether the call's header went out (from then on it counts as a call, come what may).
    fn header_sent(&self) -> bool;
    /// The answer ended inside the call: true when the call counts (its header went out; its
    /// arguments are closed), false when the caller must give its text back.
    fn end(&mut self, sink: &mut impl TextSink) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Name,
    Arguments,
    /// A member a call may have that says nothing the client needs (`type`, `id`), or any member
    /// once the call is certain.
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arguments {
    NotSeen,
    /// An object, streamed (buffered in `pending` while the name is unknown).
    Object,
    /// Another value (a string holding JSON, `null`...), kept whole in `pending` and mapped at
    /// its end.
    Other,
    Done,
}

/// `{"name": ..., "arguments"|"parameters": ...}` read as it arrives.
pub struct CallObject {
    index: u64,
    cursor: JsonCursor,
    member: Member,
    /// The raw bytes of the key being read, or of the name's string value.
    raw: Vec<u8>,
    name: Option<String>,
    arguments: Arguments,
    /// Argument bytes not yet sent.
    pending: Vec<u8>,
    header_sent: bool,
}

impl CallObject {
    /// A call that will be number `index` if it turns out to be one. The text fed starts at
    /// its `{`.
    pub fn new(index: u64) -> Self {
        CallObject {
            index,
            cursor: JsonCursor::default(),
            member: Member::Ignored,
            raw: Vec::new(),
            name: None,
            arguments: Arguments::NotSeen,
            pending: Vec::new(),
            header_sent: false,
        }
    }

    fn read(&mut self, text: &str, sink: &mut impl TextSink) -> Fed {
        for (at, byte) in text.bytes().enumerate() {
            let Ok((role, number_ended)) = self.cursor.push(byte) else {
                return Fed::Failed(at);
            };
            if number_ended && self.value_ended(sink).is_err() {
                return Fed::Failed(at);
            }
            let ok = match role {
                Role::Structure => Ok(()),
                Role::Key { last } => {
                    self.raw.push(byte);
                    if last {
                        self.key_ended()
                    } else {
                        Ok(())
                    }
                }
                Role::Value { first, last } => {
                    if first {
                        self.value_started(byte, sink);
                    }
                    match self.member {
                        Member::Name => self.raw.push(byte),
                        Member::Arguments => self.pending.push(byte),
                        Member::Ignored => {}
                    }
                    if last {
                        self.value_ended(sink)
                    } else {
                        Ok(())
                    }
                }
                Role::Close => {
                    return match self.closed(sink) {
                        Ok(()) => Fed::Done(at + 1),
                        Err(()) => Fed::Failed(at),
                    };
                }
            };
            if ok.is_err() {
                return Fed::Failed(at);
            }
        }
        Fed::More
    }

    fn key_ended(&mut self) -> Result<(), ()> {
        let key: String = serde_json::from_slice(&self.raw).map_err(|_| ())?;
        self.raw.clear();
        self.member = match key.as_str() {
            "name" if self.name.is_none() => Member::Name,
            "arguments" | "parameters" if self.arguments == Arguments::NotSeen => Member::Arguments,
            _ if self.header_sent => Member::Ignored,
            "type" | "id" => Member::Ignored,
            // Not a call (a JSON answer that happens to start like one): decided early.
            _ => return Err(()),
        };
        Ok(())
    }

    fn value_started(&mut self, byte: u8, sink: &mut impl TextSink) {
        if self.member == Member::Arguments {
            self.arguments = if byte == b'{' {
                Arguments::Object
            } else {
                Arguments::Other
            };
            self.send_header(sink);
        }
    }

    fn value_ended(&mut self, sink: &mut impl TextSink) -> Result<(), ()> {
        match self.member {
            Member::Name => {
                let name: String = serde_json::from_slice(&self.raw).map_err(|_| ())?;
                self.raw.clear();
                if name.is_empty() {
                    return Err(());
                }
                self.name = Some(name);
                if self.arguments != Arguments::NotSeen {
                    self.send_header(sink);
                }
            }
            Member::Arguments => {
                if self.arguments == Arguments::Other {
                    let mapped = other_arguments(&self.pending);
                    self.pending.clear();
                    self.pending.extend_from_slice(mapped.as_bytes());
                }
                self.arguments = Arguments::Done;
                self.flush(sink);
            }
            Member::Ignored => {}
        }
        self.member = Member::Ignored;
        Ok(())
    }

    /// The object closed: a call needs at least its name.
    fn closed(&mut self, sink: &mut impl TextSink) -> Result<(), ()> {
        if self.name.is_none() {
            return Err(());
        }
        if self.arguments == Arguments::NotSeen {
            self.pending.extend_from_slice(b"{}");
            self.arguments = Arguments::Done;
        }
        self.send_header(sink);
        self.flush(sink);
        Ok(())
    }

    fn send_header(&mut self, sink: &mut impl TextSink) {
        if self.header_sent {
            return;
        }
        if let Some(name) = &self.name {
            sink.tool_call(self.index, name);
            self.header_sent = true;
        }
    }

    /// Sends the argument bytes taken so far, once they may go out.
    fn flush(&mut self, sink: &mut impl TextSink) {
        let ready = self.arguments == Arguments::Object || self.arguments == Arguments::Done;
        if self.header_sent && ready && !self.pending.is_empty() {
            // Whole characters: pieces end at `&str` boundaries or at ASCII JSON bytes.
            if let Ok(text) = std::str::from_utf8(&self.pending) {
                sink.tool_arguments(self.index, text);
            }
            self.pending.clear();
        }
    }

    /// The call cannot go on: a call whose header went out gets arguments that parse.
    fn abandon(&mut self, sink: &mut impl TextSink) {
        if !self.header_sent {
            return;
        }
        match self.arguments {
            Arguments::Object => {
                let closing = self.cursor.closing(1);
                self.pending.extend_from_slice(closing.as_bytes());
                self.arguments = Arguments::Done;
            }
            Arguments::Other | Arguments::NotSeen => {
                self.pending.clear();
                self.pending.extend_from_slice(b"{}");
                self.arguments = Arguments::Done;
            }
            Arguments::Done => {}
        }
        self.flush(sink);
    }
}

impl CallReader for CallObject {
    fn header_sent(&self) -> bool {
        self.header_sent
    }

    fn feed(&mut self, text: &str, sink: &mut impl TextSink) -> Fed {
        let fed = self.read(text, sink);
        if let Fed::Failed(_) = fed {
            self.abandon(sink);
        } else {
            self.flush(sink);
        }
        fed
    }

    fn end(&mut self, sink: &mut impl TextSink) -> bool {
        self.abandon(sink);
        self.header_sent
    }
}

/// Arguments that were not an object: a string holding a JSON object (some models write them
/// so) → that object's text; `null` → `{}`; anything else stays as written (valid JSON).
fn other_arguments(raw: &[u8]) -> String {
    let raw = std::str::from_utf8(raw).unwrap_or("null").trim();
    if raw == "null" {
        return "{}".to_owned();
    }
    if raw.starts_with('"') {
        if let Ok(inner) = serde_json::from_str::<String>(raw) {
            let object = inner.trim_start().starts_with('{')
                && serde_json::from_str::<IgnoredAny>(&inner).is_ok();
            if object {
                return inner;
            }
        }
    }
    crate::json::compact::compact(raw)
}

/// Just the arguments object of a call whose name is known: `{...}`, leading whitespace
/// allowed. The header goes out with its `{`.
pub struct ArgumentsObject {
    index: u64,
    name: String,
    cursor: JsonCursor,
    pending: Vec<u8>,
    header_sent: bool,
}

impl ArgumentsObject {
    pub fn new(index: u64, name: String) -> Self {
        ArgumentsObject {
            index,
            name,
            cursor: JsonCursor::default(),
            pending: Vec::new(),
            header_sent: false,
        }
    }

    fn flush(&mut self, sink: &mut impl TextSink) {
        if !self.pending.is_empty() {
            if let Ok(text) = std::str::from_utf8(&self.pending) {
                sink.tool_arguments(self.index, text);
            }
            self.pending.clear();
        }
    }
}

impl CallReader for ArgumentsObject {
    fn header_sent(&self) -> bool {
        self.header_sent
    }

    fn feed(&mut self, text: &str, sink: &mut impl TextSink) -> Fed {
        let mut fed = Fed::More;
        for (at, byte) in text.bytes().enumerate() {
            if !self.header_sent {
                if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                    continue;
                }
                if byte != b'{' {
                    return Fed::Failed(at);
                }
                sink.tool_call(self.index, &self.name);
                self.header_sent = true;
            }
            if self.cursor.push(byte).is_err() {
                fed = Fed::Failed(at);
                self.pending
                    .extend_from_slice(self.cursor.closing(0).as_bytes());
                break;
            }
            self.pending.push(byte);
            if self.cursor.done() {
                fed = Fed::Done(at + 1);
                break;
            }
        }
        self.flush(sink);
        fed
    }

    fn end(&mut self, sink: &mut impl TextSink) -> bool {
        if self.header_sent && !self.cursor.done() {
            self.pending
                .extend_from_slice(self.cursor.closing(0).as_bytes());
            self.flush(sink);
        }
        self.header_sent
    }
}
