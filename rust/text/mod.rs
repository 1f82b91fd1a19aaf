//! The text stage of native text-generation dialects: the generated text goes through a
//! pipeline of small stages (stop strings, then reasoning tags, then tool-call markup), each
//! holding back only what it cannot decide yet, so the result never depends on how the text was
//! split into tokens or reads.

pub mod stop;
pub mod think;
pub mod tools;

use stop::StopFilter;
use think::{ThinkMode, ThinkSplitter};
use tools::{ToolFormat, ToolParser};

/// Where a stage sends what it has decided on.
pub trait TextSink {
    fn content(&mut self, text: &str);
    fn reasoning(&mut self, text: &str);
    /// Tool call number `index` (counted over the answer from 0) starts, calling `name`.
    fn tool_call(&mut self, index: u64, name: &str);
    /// The next piece of call `index`'s arguments (JSON text; the pieces add up to an object).
    fn tool_arguments(&mut self, index: u64, fragment: &str);
}

/// The tool-call pieces of one release: a header (`name`) and/or argument text, per call.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReleasedCall {
    pub index: u64,
    /// Set when the call started in this release.
    pub name: Option<String>,
    pub arguments: String,
}

/// The released text, by kind, in order; tool-call pieces merged per call.
#[derive(Debug, Default)]
pub struct Released {
    pub content: String,
    pub reasoning: String,
    pub calls: Vec<ReleasedCall>,
}

impl Released {
    pub fn is_empty(&self) -> bool {
        self.content.is_empty() && self.reasoning.is_empty() && self.calls.is_empty()
    }

    pub fn clear(&mut self) {
        self.content.clear();
        self.reasoning.clear();
        self.calls.clear();
    }
}

impl TextSink for Released {
    fn content(&mut self, text: &str) {
        self.content.push_str(text);
    }

    fn reasoning(&mut self, text: &str) {
        self.reasoning.push_str(text);
    }

    fn tool_call(&mut self, index: u64, name: &str) {
        self.calls.push(ReleasedCall {
            index,
            name: Some(name.to_owned()),
            arguments: String::new(),
        });
    }

    fn tool_arguments(&mut self, index: u64, fragment: &str) {
        match self.calls.last_mut() {
            Some(call) if call.index == index => call.arguments.push_str(fragment),
            _ => self.calls.push(ReleasedCall {
                index,
                name: None,
                arguments: fragment.to_owned(),
            }),
        }
    }
}

/// Between the reasoning tags and the final sink: content goes through the tool-call parser,
/// reasoning passes (calls inside reasoning are the model thinking aloud, not calls).
struct ToolStep<'a, S> {
    parser: &'a mut ToolParser,
    sink: &'a mut S,
}

impl<S: TextSink> TextSink for ToolStep<'_, S> {
    fn content(&mut self, text: &str) {
        self.parser.push(text, self.sink);
    }

    fn reasoning(&mut self, text: &str) {
        self.sink.reasoning(text);
    }

    fn tool_call(&mut self, index: u64, name: &str) {
        self.sink.tool_call(index, name);
    }

    fn tool_arguments(&mut self, index: u64, fragment: &str) {
        self.sink.tool_arguments(index, fragment);
    }
}

/// Checks the stop strings a request gave: an empty one would end every answer at once.
pub fn check_stops(stops: &[String]) -> Result<(), String> {
    if stops.iter().any(String::is_empty) {
        return Err("stop strings must not be empty; remove the empty string from 'stop'".into());
    }
    Ok(())
}

/// Stop strings, then reasoning tags, then (when asked for) tool-call markup.
pub struct TextStage {
    stop: StopFilter,
    think: ThinkSplitter,
    tools: Option<ToolParser>,
}

impl TextStage {
    pub fn new(stops: Vec<String>, think: ThinkMode, tools: Option<ToolFormat>) -> Self {
        TextStage {
            stop: StopFilter::new(stops),
            think: ThinkSplitter::new(think),
            tools: tools.map(ToolParser::new),
        }
    }

    /// Takes the next piece of generated text; sends what is decided to `sink`.
    pub fn push(&mut self, text: &str, sink: &mut impl TextSink) {
        let think = &mut self.think;
        match &mut self.tools {
            None => self
                .stop
                .push(text, &mut |released| think.push(released, sink)),
            Some(parser) => {
                let mut step = ToolStep { parser, sink };
                self.stop
                    .push(text, &mut |released| think.push(released, &mut step));
            }
        }
    }

    /// No more text: releases everything still held.
    pub fn finish(&mut self, sink: &mut impl TextSink) {
        let think = &mut self.think;
        match &mut self.tools {
            None => {
                self.stop.finish(&mut |released| think.push(released, sink));
                think.finish(sink);
            }
            Some(parser) => {
                let mut step = ToolStep { parser, sink };
                self.stop
                    .finish(&mut |released| think.push(released, &mut step));
                think.finish(&mut step);
                parser.finish(sink);
            }
        }
    }

    /// How many tool calls went out (their headers).
    pub fn tool_calls(&self) -> u64 {
        self.tools.as_ref().map_or(0, ToolParser::calls)
    }

    /// Where the next piece starts in the whole text (in bytes).
    pub fn pushed(&self) -> u64 {
        self.stop.pushed()
    }

    /// How much of the whole text has passed the stop strings (in bytes).
    pub fn released(&self) -> u64 {
        self.stop.released()
    }

    /// Where a stop string cut the text, once one matched.
    pub fn cut(&self) -> Option<u64> {
        self.stop.cut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], mode: ThinkMode, pieces: &[&str]) -> (String, String) {
        let mut stage = TextStage::new(stops.iter().map(|s| s.to_string()).collect(), mode, None);
        let mut out = Released::default();
        for piece in pieces {
            stage.push(piece, &mut out);
        }
        stage.finish(&mut out);
        (out.reasoning, out.content)
    }

    #[test]
    fn stop_strings_apply_before_think_tags() {
        let text = "<think>why</think>\n\nBecause.<|im_end|>junk";
        let whole = run(&["<|im_end|>"], ThinkMode::Auto, &[text]);
        assert_eq!(whole, ("why".into(), "Because.".into()));
        let bytes: Vec<String> = text.chars().map(String::from).collect();
        let pieces: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(run(&["<|im_end|>"], ThinkMode::Auto, &pieces), whole);
        for (at, _) in text.char_indices() {
            let split = run(
                &["<|im_end|>"],
                ThinkMode::Auto,
                &[&text[..at], &text[at..]],
            );
            assert_eq!(split, whole, "split at {at}");
        }
    }

    #[test]
    fn a_stop_string_inside_reasoning_ends_the_answer() {
        assert_eq!(
            run(&["STOP"], ThinkMode::Open, &["thinking STOP more</think>x"]),
            ("thinking ".into(), "".into())
        );
    }

    #[test]
    fn empty_stop_strings_are_refused() {
        assert!(check_stops(&["a".into()]).is_ok());
        assert!(check_stops(&["a".into(), "".into()])
            .unwrap_err()
            .contains("empty"));
    }
}
