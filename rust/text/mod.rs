//! The text stage of native text-generation dialects: the generated text goes through a
//! pipeline of small stages (stop strings, then reasoning tags), each holding back only what
//! it cannot decide yet, so the result never depends on how the text was split into tokens or
//! reads. A later stage (e.g. a tool-call parser) slots in as another `TextSink` in the chain.

pub mod stop;
pub mod think;

use stop::StopFilter;
use think::{ThinkMode, ThinkSplitter};

/// Where a stage sends the text it has decided on.
pub trait TextSink {
    fn content(&mut self, text: &str);
    fn reasoning(&mut self, text: &str);
}

/// The released text, by kind, in order.
#[derive(Debug, Default)]
pub struct Released {
    pub content: String,
    pub reasoning: String,
}

impl Released {
    pub fn is_empty(&self) -> bool {
        self.content.is_empty() && self.reasoning.is_empty()
    }

    pub fn clear(&mut self) {
        self.content.clear();
        self.reasoning.clear();
    }
}

impl TextSink for Released {
    fn content(&mut self, text: &str) {
        self.content.push_str(text);
    }

    fn reasoning(&mut self, text: &str) {
        self.reasoning.push_str(text);
    }
}

/// Checks the stop strings a request gave: an empty one would end every answer at once.
pub fn check_stops(stops: &[String]) -> Result<(), String> {
    if stops.iter().any(String::is_empty) {
        return Err("stop strings must not be empty; remove the empty string from 'stop'".into());
    }
    Ok(())
}

/// Stop strings, then reasoning tags.
pub struct TextStage {
    stop: StopFilter,
    think: ThinkSplitter,
}

impl TextStage {
    pub fn new(stops: Vec<String>, think: ThinkMode) -> Self {
        TextStage {
            stop: StopFilter::new(stops),
            think: ThinkSplitter::new(think),
        }
    }

    /// Takes the next piece of generated text; sends what is decided to `sink`.
    pub fn push(&mut self, text: &str, sink: &mut impl TextSink) {
        let think = &mut self.think;
        self.stop
            .push(text, &mut |released| think.push(released, sink));
    }

    /// No more text: releases everything still held.
    pub fn finish(&mut self, sink: &mut impl TextSink) {
        let think = &mut self.think;
        self.stop.finish(&mut |released| think.push(released, sink));
        think.finish(sink);
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
        let mut stage = TextStage::new(stops.iter().map(|s| s.to_string()).collect(), mode);
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
