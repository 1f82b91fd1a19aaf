//! Reasoning in `<think>…</think>` (DeepSeek-R1, Qwen3, …): native text-generation servers send
//! it as ordinary text, OpenAI clients expect it apart, as `reasoning_content`.
//!
//! Tags may arrive split anywhere, so only what could still be part of a tag is held back:
//! leading whitespace and a partial `<think>` at the start, a partial `</think>` while reasoning.

use super::TextSink;

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// How the answer's reasoning is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkMode {
    /// No tag handling: everything is content.
    Off,
    /// A `<think>` counts when it is the first non-whitespace output.
    Auto,
    /// The prompt already opened the think block (templates that end with `<think>\n`): the
    /// output is reasoning until `</think>`.
    Open,
}

impl ThinkMode {
    pub const NAMES: &'static [&'static str] = &["off", "auto", "open"];

    pub fn from_name(name: &str) -> Result<Self, String> {
        match name {
            "off" => Ok(ThinkMode::Off),
            "auto" => Ok(ThinkMode::Auto),
            "open" => Ok(ThinkMode::Open),
            _ => Err(format!(
                "unknown think mode {name:?}; use one of: {}",
                Self::NAMES.join(", ")
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace yet (auto): a `<think>` may still come.
    Start,
    Reasoning,
    /// Just after `</think>`: the whitespace before the content is dropped.
    AfterThink,
    Content,
}

pub struct ThinkSplitter {
    state: State,
    /// Text that may still be part of a tag.
    held: String,
    /// `held` plus the next piece, reused across calls.
    scratch: String,
}

impl ThinkSplitter {
    pub fn new(mode: ThinkMode) -> Self {
        let state = match mode {
            ThinkMode::Off => State::Content,
            ThinkMode::Auto => State::Start,
            ThinkMode::Open => State::Reasoning,
        };
        ThinkSplitter {
            state,
            held: String::new(),
            scratch: String::new(),
        }
    }

    pub fn push(&mut self, text: &str, sink: &mut impl TextSink) {
        if self.held.is_empty() {
            self.split(text, sink);
            return;
        }
        let mut work = std::mem::take(&mut self.scratch);
        work.clear();
        work.push_str(&self.held);
        work.push_str(text);
        self.held.clear();
        self.split(&work, sink);
        self.scratch = work;
    }

    /// No more text: what was held was not a tag after all.
    pub fn finish(&mut self, sink: &mut impl TextSink) {
        if self.held.is_empty() {
            return;
        }
        match self.state {
            State::Reasoning => sink.reasoning(&self.held),
            _ => sink.content(&self.held),
        }
        self.held.clear();
    }

    fn split(&mut self, mut rest: &str, sink: &mut impl TextSink) {
        while !rest.is_empty() {
            match self.state {
                State::Start => {
                    let trimmed = rest.trim_start();
                    if let Some(after) = trimmed.strip_prefix(OPEN) {
                        self.state = State::Reasoning;
                        rest = after;
                    } else if OPEN.starts_with(trimmed) {
                        // Only whitespace, or whitespace and a partial `<think>`.
                        self.held.push_str(rest);
                        return;
                    } else {
                        self.state = State::Content;
                    }
                }
                State::Reasoning => match rest.find(CLOSE) {
                    Some(at) => {
                        if at > 0 {
                            sink.reasoning(&rest[..at]);
                        }
                        self.state = State::AfterThink;
                        rest = &rest[at + CLOSE.len()..];
                    }
                    None => {
                        let keep = partial_tag_len(rest, CLOSE);
                        let (out, held) = rest.split_at(rest.len() - keep);
                        if !out.is_empty() {
                            sink.reasoning(out);
                        }
                        self.held.push_str(held);
                        return;
                    }
                },
                State::AfterThink => {
                    rest = rest.trim_start();
                    if !rest.is_empty() {
                        self.state = State::Content;
                    }
                }
                State::Content => {
                    sink.content(rest);
                    return;
                }
            }
        }
    }
}

/// The length of the longest end of `text` that is a proper start of the (ASCII) `tag`.
fn partial_tag_len(text: &str, tag: &str) -> usize {
    let text = text.as_bytes();
    (1..tag.len().min(text.len() + 1))
        .rev()
        .find(|&len| text.ends_with(&tag.as_bytes()[..len]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::Released;

    fn run(mode: ThinkMode, pieces: &[&str]) -> (String, String) {
        let mut splitter = ThinkSplitter::new(mode);
        let mut out = Released::default();
        for piece in pieces {
            splitter.push(piece, &mut out);
        }
        splitter.finish(&mut out);
        (out.reasoning, out.content)
    }

    /// Split in two at every char boundary, and char by char: all the same.
    fn every_split(mode: ThinkMode, text: &str) -> (String, String) {
        let whole = run(mode, &[text]);
        for (at, _) in text.char_indices() {
            assert_eq!(
                run(mode, &[&text[..at], &text[at..]]),
                whole,
                "split at {at}"
            );
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(run(mode, &pieces), whole, "char by char");
        whole
    }

    fn pair(reasoning: &str, content: &str) -> (String, String) {
        (reasoning.into(), content.into())
    }

    #[test]
    fn auto_splits_a_leading_think_block() {
        assert_eq!(
            every_split(ThinkMode::Auto, "\n <think>\nHmm, 2+2.</think>\n\nIt is 4."),
            pair("\nHmm, 2+2.", "It is 4.")
        );
    }

    #[test]
    fn auto_ignores_a_think_tag_after_other_output() {
        let text = "Say <think>x</think> y";
        assert_eq!(every_split(ThinkMode::Auto, text), pair("", text));
        assert_eq!(every_split(ThinkMode::Auto, "  hi"), pair("", "  hi"));
        assert_eq!(every_split(ThinkMode::Auto, " <thin"), pair("", " <thin"));
        assert_eq!(
            every_split(ThinkMode::Auto, "<thinking>"),
            pair("", "<thinking>")
        );
    }

    #[test]
    fn open_starts_in_reasoning() {
        assert_eq!(
            every_split(ThinkMode::Open, "Grüße 😀 </thi</think> \n Antwort 😀"),
            pair("Grüße 😀 </thi", "Antwort 😀")
        );
        // A block the stream never closed stays reasoning, partial tag included.
        assert_eq!(
            every_split(ThinkMode::Open, "still thinking </thin"),
            pair("still thinking </thin", "")
        );
    }

    #[test]
    fn off_leaves_tags_in_the_content() {
        let text = "<think>x</think>y";
        assert_eq!(every_split(ThinkMode::Off, text), pair("", text));
    }

    #[test]
    fn only_a_possible_tag_is_held_back() {
        let mut splitter = ThinkSplitter::new(ThinkMode::Open);
        let mut out = Released::default();
        splitter.push("a </th", &mut out);
        assert_eq!(out.reasoning, "a ");
        splitter.push("x", &mut out);
        assert_eq!(out.reasoning, "a </thx");
        splitter.push("</think>", &mut out);
        splitter.push("\n\n", &mut out);
        assert_eq!(out.content, "", "whitespace after </think> is dropped");
        splitter.push("b", &mut out);
        assert_eq!(out.content, "b");
    }

    #[test]
    fn mode_names() {
        assert_eq!(ThinkMode::from_name("open"), Ok(ThinkMode::Open));
        let error = ThinkMode::from_name("on").unwrap_err();
        assert!(error.contains("off, auto, open"), "{error}");
    }
}
