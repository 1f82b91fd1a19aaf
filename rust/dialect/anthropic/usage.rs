//! The OpenAI usage object for an Anthropic answer (PROTOCOLS.md §4.5): Anthropic reports the
//! prompt in three parts (uncached, written to the cache, read from it) and the output
//! cumulatively, so the counts are gathered over the stream and written once at the end.

use std::fmt::Write;

use super::wire::{count, UsageView};
use crate::dialect::reported;

/// The counts reported so far; each `None` until reported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UsageSoFar {
    input: Option<u64>,
    cache_creation: Option<u64>,
    cache_read: Option<u64>,
    /// The final output count: `message_delta`'s (cumulative, so the last one wins) or a
    /// body's. `message_start`'s is a placeholder and never lands here.
    output: Option<u64>,
    thinking: Option<u64>,
}

impl UsageSoFar {
    /// Takes the counts `usage` reports, each replacing the one before. `output_is_final` is
    /// false for `message_start`, whose `output_tokens` is a placeholder (1–5).
    pub fn take(&mut self, usage: &UsageView<'_>, output_is_final: bool) {
        fn replace(slot: &mut Option<u64>, value: Option<u64>) {
            if value.is_some() {
                *slot = value;
            }
        }
        replace(&mut self.input, count(usage.input_tokens));
        replace(
            &mut self.cache_creation,
            count(usage.cache_creation_input_tokens),
        );
        replace(&mut self.cache_read, count(usage.cache_read_input_tokens));
        if output_is_final {
            replace(&mut self.output, count(usage.output_tokens));
        }
        replace(&mut self.thinking, usage.thinking_tokens());
    }

    /// `{"prompt_tokens":P,"completion_tokens":C,"total_tokens":P+C
    /// [,"prompt_tokens_details":{"cached_tokens":R}][,"completion_tokens_details":
    /// {"reasoning_tokens":T}][,"estimated":true]}`.
    ///
    /// P is input + cache writes + cache reads; R (cache reads) only when Anthropic reported
    /// it, 0 staying 0. An unreported input count is replaced by `prompt_estimate` (or 0), an
    /// unreported final output count by `counted` (the pieces sent), and then the object is
    /// marked estimated.
    pub fn json(&self, counted: u64, prompt_estimate: Option<u64>) -> String {
        let input = self.input.or(prompt_estimate).unwrap_or(0);
        let prompt = input
            .saturating_add(self.cache_creation.unwrap_or(0))
            .saturating_add(self.cache_read.unwrap_or(0));
        let completion = self.output.unwrap_or(counted);
        let estimated = self.input.is_none() || self.output.is_none();
        reported::usage_json(prompt, completion, estimated, |out| {
            // Writing into a String cannot fail.
            if let Some(cached) = self.cache_read {
                let _ = write!(
                    out,
                    ",\"prompt_tokens_details\":{{\"cached_tokens\":{cached}}}"
                );
            }
            if let Some(thinking) = self.thinking {
                let _ = write!(
                    out,
                    ",\"completion_tokens_details\":{{\"reasoning_tokens\":{thinking}}}"
                );
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(json: &str) -> UsageView<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plain_counts() {
        let mut so_far = UsageSoFar::default();
        so_far.take(&usage(r#"{"input_tokens":11,"output_tokens":1}"#), false);
        so_far.take(&usage(r#"{"output_tokens":3}"#), true);
        so_far.take(&usage(r#"{"output_tokens":6}"#), true);
        assert_eq!(
            so_far.json(99, Some(1000)),
            r#"{"prompt_tokens":11,"completion_tokens":6,"total_tokens":17}"#
        );
    }

    #[test]
    fn cache_parts_add_up_and_a_zero_stays() {
        let mut so_far = UsageSoFar::default();
        so_far.take(
            &usage(r#"{"input_tokens":377,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}"#),
            false,
        );
        so_far.take(&usage(r#"{"output_tokens":65}"#), true);
        assert_eq!(
            so_far.json(0, None),
            r#"{"prompt_tokens":377,"completion_tokens":65,"total_tokens":442,"prompt_tokens_details":{"cached_tokens":0}}"#
        );
        // Repeated in message_delta: the later counts win.
        so_far.take(
            &usage(r#"{"input_tokens":5,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":70,"output_tokens_details":{"thinking_tokens":67}}"#),
            true,
        );
        assert_eq!(
            so_far.json(0, None),
            r#"{"prompt_tokens":2105,"completion_tokens":70,"total_tokens":2175,"prompt_tokens_details":{"cached_tokens":2000},"completion_tokens_details":{"reasoning_tokens":67}}"#
        );
    }

    #[test]
    fn unreported_counts_are_estimated() {
        let mut so_far = UsageSoFar::default();
        assert_eq!(
            so_far.json(0, None),
            r#"{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"estimated":true}"#
        );
        assert_eq!(
            so_far.json(3, Some(9)),
            r#"{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"estimated":true}"#
        );
        so_far.take(&usage(r#"{"input_tokens":4,"output_tokens":1}"#), false);
        assert_eq!(
            so_far.json(2, Some(9)),
            r#"{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6,"estimated":true}"#
        );
    }
}
