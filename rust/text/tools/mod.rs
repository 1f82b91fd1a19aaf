//! Tool calls written as text (native text-generation APIs have no tool-call field): the step
//! after the reasoning tags finds each model family's call markup in the content and turns it
//! into OpenAI tool-call pieces.
//!
//! Like the other steps it holds back only what could still be markup (a trailing `<tool` for
//! hermes, the undecided start of the answer for llama3) and releases everything else at once,
//! so the result never depends on how the text was split. Whitespace right around markup (at
//! the start of an answer that turns out to be calls, between and after calls) is part of the
//! markup and dropped; the text before a call, between calls and after them is content.
//!
//! A call's header (index, name) goes out once its name is known and its arguments have
//! started; the arguments then stream as raw JSON text (see `call.rs`). Markup that proves
//! malformed before that point goes back into the content, every byte of it; after it, the
//! call's arguments are closed so they still parse, and the text from the fault on is content.

mod call;
mod cursor;
mod deepseek;
mod hermes;
mod llama3;
mod mistral;

use call::{CallReader, Fed};
use deepseek::DeepSeek;
use hermes::Hermes;
use llama3::Llama3;
use mistral::Mistral;

use super::TextSink;

/// The tool-call markup a model family writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    /// Qwen 2.5/3, Hermes, ChatML models: `<tool_call>\n{"name": .., "arguments": ..}\n</tool_call>`.
    Hermes,
    /// Llama 3.1+: the answer is `{"name": .., "parameters": ..}` (`;`-separated for several),
    /// maybe after `<|python_tag|>`.
    Llama3,
    /// DeepSeek V3/R1: `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME`
    /// and the arguments in a json code fence.
    DeepSeek,
    /// Mistral: `[TOOL_CALLS] [{"name": .., "arguments": ..}, ..]` or `[TOOL_CALLS]NAME[ARGS]{..}`.
    Mistral,
}

impl ToolFormat {
    pub const NAMES: &'static [&'static str] = &["hermes", "llama3", "deepseek", "mistral"];

    pub fn from_name(name: &str) -> Result<Self, String> {
        match name {
            "hermes" => Ok(ToolFormat::Hermes),
            "llama3" => Ok(ToolFormat::Llama3),
            "deepseek" => Ok(ToolFormat::DeepSeek),
            "mistral" => Ok(ToolFormat::Mistral),
            _ => Err(format!(
                "unknown tool-call format {name:?}; use one of: {}",
                Self::NAMES.join(", ")
            )),
        }
    }
}

/// The text a format has not released yet, and the calls so far.
#[derive(Default)]
struct Core {
    /// Undecided text (whitespace, a partial marker): read again with the next piece.
    held: String,
    /// Markup taken for a call whose header has not gone out: given back as content if the
    /// call fails.
    taken: String,
    /// Calls that went out, finished or closed.
    calls: u64,
}

/// What a format does after feeding a call.
enum AfterCall {
    /// The call wants more text.
    More,
    /// The call ended (`ok`: as a call; else its text went back to the content or its
    /// arguments were closed); the text from `at` on is not part of it.
    Ended { at: usize, ok: bool },
}

impl Core {
    /// The content of a failed attempt: everything taken for it, then `more`.
    fn give_back(&mut self, more: &str, sink: &mut impl TextSink) {
        content(sink, &self.taken);
        self.taken.clear();
        content(sink, more);
    }

    /// The content of a failed attempt that the answer's end cut short: everything taken for
    /// it, then what was held.
    fn give_back_held(&mut self, sink: &mut impl TextSink) {
        let held = std::mem::take(&mut self.held);
        self.give_back(&held, sink);
    }

    /// Text: releases it as content up to `marker`, which is taken, and returns the text after
    /// it; `None` when there is no whole marker (the text went out, a possible start is held).
    fn until_marker<'a>(
        &mut self,
        rest: &'a str,
        marker: &str,
        sink: &mut impl TextSink,
    ) -> Option<&'a str> {
        match scan(rest, marker) {
            Scan::Marker(at) => {
                content(sink, &rest[..at]);
                self.taken.push_str(marker);
                Some(&rest[at + marker.len()..])
            }
            Scan::Hold(at) => {
                content(sink, &rest[..at]);
                self.held.push_str(&rest[at..]);
                None
            }
            Scan::Text => {
                content(sink, rest);
                None
            }
        }
    }

    /// Takes the `ws` bytes of whitespace that [`lead`] found (when `keep_ws`: they go back as
    /// content if the call fails; else they are markup, dropped) and the `marker` after them;
    /// returns the text that follows.
    fn take_marker<'a>(
        &mut self,
        rest: &'a str,
        ws: usize,
        marker: &str,
        keep_ws: bool,
    ) -> &'a str {
        if keep_ws {
            self.taken.push_str(&rest[..ws]);
        }
        self.taken.push_str(marker);
        &rest[ws + marker.len()..]
    }

    /// Takes the whitespace inside markup (given back with it if the call fails); returns the
    /// text after it.
    fn take_whitespace<'a>(&mut self, rest: &'a str) -> &'a str {
        let trimmed = rest.trim_start();
        self.taken.push_str(&rest[..rest.len() - trimmed.len()]);
        trimmed
    }

    /// Feeds `rest` to `call` and books the result: on a failure before the call's header went
    /// out, what was taken for it and the text it read go back as content.
    fn feed_call(
        &mut self,
        call: &mut impl CallReader,
        rest: &str,
        sink: &mut impl TextSink,
    ) -> AfterCall {
        let fed = call.feed(rest, sink);
        let header_sent = call.header_sent();
        match fed {
            Fed::More => {
                if header_sent {
                    self.taken.clear();
                } else {
                    self.taken.push_str(rest);
                }
                AfterCall::More
            }
            Fed::Done(at) => {
                self.taken.clear();
                self.calls += 1;
                AfterCall::Ended { at, ok: true }
            }
            Fed::Failed(at) => {
                if header_sent {
                    self.taken.clear();
                    self.calls += 1;
                } else {
                    self.give_back(&rest[..at], sink);
                }
                AfterCall::Ended { at, ok: false }
            }
        }
    }

    /// The answer ended inside `call`: it counts if its header went out (its arguments are
    /// closed); else its markup (and whatever was held) is content.
    fn end_in_call(&mut self, call: &mut impl CallReader, sink: &mut impl TextSink) {
        if call.end(sink) {
            self.calls += 1;
            self.taken.clear();
        } else {
            self.give_back_held(sink);
        }
        self.held.clear();
    }

    /// The answer ended in text (or before a call was begun): what was held is content, less
    /// its leading whitespace after a call (markup, dropped).
    fn release_held(&mut self, after_call: bool, sink: &mut impl TextSink) {
        if after_call {
            content(sink, self.held.trim_start());
        } else {
            content(sink, &self.held);
        }
    }
}

/// Sends content that is not empty (an empty piece would be a chunk-less no-op downstream, but
/// keeps the sink's record honest).
fn content(sink: &mut impl TextSink, text: &str) {
    if !text.is_empty() {
        sink.content(text);
    }
}

/// Where a marker stands in a piece of text.
enum Scan {
    /// A whole marker starts here.
    Marker(usize),
    /// The text from here on may be the start of a marker.
    Hold(usize),
    /// No marker.
    Text,
}

/// The earliest `marker` (ASCII-led) in `text`, or the start of a possible one at its end.
fn scan(text: &str, marker: &str) -> Scan {
    let bytes = text.as_bytes();
    let first = marker.as_bytes()[0];
    for at in memchr::memchr_iter(first, bytes) {
        let rest = &bytes[at..];
        if rest.starts_with(marker.as_bytes()) {
            return Scan::Marker(at);
        }
        if marker.as_bytes().starts_with(rest) {
            return Scan::Hold(at);
        }
    }
    Scan::Text
}

/// At the start of the answer or after a call, what the text begins with.
enum Lead {
    /// Only whitespace, or whitespace and the start of a marker: undecided.
    Hold,
    /// After `ws` bytes of whitespace, `markers[which]` starts.
    Marker { ws: usize, which: usize },
    /// Something else: text from `from` on (after a call the whitespace is dropped).
    Text { from: usize },
}

/// Markers are tried in order, so a longer one must come before its own prefix.
fn lead(text: &str, markers: &[&str], after_call: bool) -> Lead {
    let trimmed = text.trim_start();
    let ws = text.len() - trimmed.len();
    if trimmed.is_empty() {
        return Lead::Hold;
    }
    for (which, marker) in markers.iter().enumerate() {
        if trimmed.starts_with(marker) {
            return Lead::Marker { ws, which };
        }
        if marker.starts_with(trimmed) {
            return Lead::Hold;
        }
    }
    Lead::Text {
        from: if after_call { ws } else { 0 },
    }
}

enum Grammar {
    Hermes(Hermes),
    Llama3(Llama3),
    DeepSeek(DeepSeek),
    Mistral(Mistral),
}

/// The tool-call step of the text stage.
pub struct ToolParser {
    grammar: Grammar,
    core: Core,
    /// `held` plus the next piece, reused across calls.
    scratch: String,
}

impl ToolParser {
    pub fn new(format: ToolFormat) -> Self {
        let grammar = match format {
            ToolFormat::Hermes => Grammar::Hermes(Hermes::default()),
            ToolFormat::Llama3 => Grammar::Llama3(Llama3::default()),
            ToolFormat::DeepSeek => Grammar::DeepSeek(DeepSeek::default()),
            ToolFormat::Mistral => Grammar::Mistral(Mistral::default()),
        };
        ToolParser {
            grammar,
            core: Core::default(),
            scratch: String::new(),
        }
    }

    /// Calls that went out so far.
    pub fn calls(&self) -> u64 {
        self.core.calls
    }

    /// Takes the next piece of content.
    pub fn push(&mut self, text: &str, sink: &mut impl TextSink) {
        if self.core.held.is_empty() {
            self.run(text, sink);
            return;
        }
        let mut work = std::mem::take(&mut self.scratch);
        work.clear();
        work.push_str(&self.core.held);
        work.push_str(text);
        self.core.held.clear();
        self.run(&work, sink);
        self.scratch = work;
    }

    fn run(&mut self, text: &str, sink: &mut impl TextSink) {
        let core = &mut self.core;
        match &mut self.grammar {
            Grammar::Hermes(g) => g.run(core, text, sink),
            Grammar::Llama3(g) => g.run(core, text, sink),
            Grammar::DeepSeek(g) => g.run(core, text, sink),
            Grammar::Mistral(g) => g.run(core, text, sink),
        }
    }

    /// No more content: what was held is content, or closes the call it was in.
    pub fn finish(&mut self, sink: &mut impl TextSink) {
        let core = &mut self.core;
        match &mut self.grammar {
            Grammar::Hermes(g) => g.finish(core, sink),
            Grammar::Llama3(g) => g.finish(core, sink),
            Grammar::DeepSeek(g) => g.finish(core, sink),
            Grammar::Mistral(g) => g.finish(core, sink),
        }
        core.held.clear();
        core.taken.clear();
    }
}

#[cfg(test)]
pub(crate) mod testing;
