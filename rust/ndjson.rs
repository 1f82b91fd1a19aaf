//! Incremental NDJSON framing (`application/x-ndjson`: one JSON document per `\n`-ended line),
//! sans-IO.
//!
//! Bytes go in through [`NdjsonParser::feed`] in whatever pieces the network delivered; complete
//! lines come out through a callback, borrowed from the input when they lie wholly inside it.
//! `\r\n` endings, blank lines and a UTF-8 BOM at the start are tolerated, and a last line
//! without `\n` is still delivered by [`NdjsonParser::finish`]. Where the input was split never
//! changes which lines come out.

use std::ops::ControlFlow;

use memchr::memchr;

use crate::sse::MAX_EVENT_BYTES;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One non-blank line, without its line ending and surrounding whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdjsonLine<'a> {
    pub text: &'a [u8],
    /// Delivered by `finish` without a `\n`: the stream may have been cut inside it.
    pub unterminated: bool,
}

/// What the parser hands to its consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdjsonItem<'a> {
    Line(NdjsonLine<'a>),
    /// A line grew past [`MAX_EVENT_BYTES`] (the SSE event limit: no answer line is that big);
    /// the parser has stopped and drops further input.
    TooLarge,
}

#[derive(Debug, Default)]
pub struct NdjsonParser {
    /// An incomplete line carried over from the previous input.
    line: Vec<u8>,
    /// The first line has been delivered (only it may start with a BOM).
    past_first_line: bool,
    stopped: bool,
}

impl NdjsonParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `input`, calling `sink` for each complete line. `sink` returns
    /// `ControlFlow::Break(())` to stop parsing for good (the answer is over).
    pub fn feed<F>(&mut self, input: &[u8], sink: &mut F)
    where
        F: FnMut(NdjsonItem<'_>) -> ControlFlow<()>,
    {
        if self.stopped {
            return;
        }
        let mut pos = 0;
        while let Some(offset) = memchr(b'\n', &input[pos..]) {
            let end = pos + offset;
            // The size is measured the same way whether the line arrived whole or in pieces, so
            // the limit trips on the same line however the input was split.
            let flow = if self.line.is_empty() {
                if end - pos > MAX_EVENT_BYTES {
                    return self.too_large(sink);
                }
                self.deliver(&input[pos..end], false, sink)
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&input[pos..end]);
                if line.len() > MAX_EVENT_BYTES {
                    return self.too_large(sink);
                }
                let flow = self.deliver(&line, false, sink);
                line.clear();
                self.line = line;
                flow
            };
            if flow.is_break() {
                self.stopped = true;
                self.line = Vec::new();
                return;
            }
            pos = end + 1;
        }
        let tail = &input[pos..];
        if self.line.len() + tail.len() > MAX_EVENT_BYTES {
            return self.too_large(sink);
        }
        self.line.extend_from_slice(tail);
    }

    /// End of input: a last line without `\n` is still delivered, marked unterminated.
    pub fn finish<F>(&mut self, sink: &mut F)
    where
        F: FnMut(NdjsonItem<'_>) -> ControlFlow<()>,
    {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            let _ = self.deliver(&line, true, sink);
        }
    }

    fn deliver<F>(&mut self, raw: &[u8], unterminated: bool, sink: &mut F) -> ControlFlow<()>
    where
        F: FnMut(NdjsonItem<'_>) -> ControlFlow<()>,
    {
        let mut text = raw;
        if !std::mem::replace(&mut self.past_first_line, true) {
            text = text.strip_prefix(BOM).unwrap_or(text);
        }
        // Trimming takes the `\r` of a `\r\n` ending, and leaves blank lines empty.
        let text = text.trim_ascii();
        if text.is_empty() {
            return ControlFlow::Continue(());
        }
        sink(NdjsonItem::Line(NdjsonLine { text, unterminated }))
    }

    fn too_large<F>(&mut self, sink: &mut F)
    where
        F: FnMut(NdjsonItem<'_>) -> ControlFlow<()>,
    {
        self.stopped = true;
        self.line = Vec::new();
        let _ = sink(NdjsonItem::TooLarge);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owned copies of what the parser delivered: `(text, unterminated)`, `None` for too large.
    fn parse(pieces: &[&[u8]]) -> Vec<Option<(String, bool)>> {
        let mut parser = NdjsonParser::new();
        let mut seen = Vec::new();
        let mut sink = |item: NdjsonItem<'_>| {
            seen.push(match item {
                NdjsonItem::Line(line) => Some((
                    String::from_utf8(line.text.to_vec()).unwrap(),
                    line.unterminated,
                )),
                NdjsonItem::TooLarge => None,
            });
            ControlFlow::Continue(())
        };
        for piece in pieces {
            parser.feed(piece, &mut sink);
        }
        parser.finish(&mut sink);
        seen
    }

    fn every_split(input: &[u8]) -> Vec<Option<(String, bool)>> {
        let whole = parse(&[input]);
        for cut in 0..=input.len() {
            assert_eq!(
                parse(&[&input[..cut], &input[cut..]]),
                whole,
                "split at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(parse(&bytes), whole, "byte by byte");
        whole
    }

    fn line(text: &str, unterminated: bool) -> Option<(String, bool)> {
        Some((text.to_owned(), unterminated))
    }

    #[test]
    fn lines_crlf_blank_lines_bom_and_a_last_line_without_newline() {
        let input = b"\xEF\xBB\xBF{\"a\":1}\r\n\n  \r\n{\"b\":\"\xC3\xA9\"}\n{\"c\":3}";
        assert_eq!(
            every_split(input),
            vec![
                line("{\"a\":1}", false),
                line("{\"b\":\"é\"}", false),
                line("{\"c\":3}", true),
            ]
        );
    }

    #[test]
    fn a_bom_counts_only_at_the_very_start() {
        assert_eq!(
            every_split(b"\n\xEF\xBB\xBF{}\n"),
            vec![line("\u{feff}{}", false)]
        );
    }

    #[test]
    fn break_stops_for_good() {
        let mut parser = NdjsonParser::new();
        let mut count = 0;
        let mut sink = |_: NdjsonItem<'_>| {
            count += 1;
            ControlFlow::Break(())
        };
        parser.feed(b"{}\n{}\n", &mut sink);
        parser.feed(b"{}\n", &mut sink);
        parser.finish(&mut sink);
        assert_eq!(count, 1);
    }

    #[test]
    fn a_line_over_the_limit_is_too_large_however_it_arrives() {
        let mut input = vec![b'{'; MAX_EVENT_BYTES + 1];
        input.push(b'\n');
        let mut with_line_before = b"{}\n".to_vec();
        with_line_before.extend_from_slice(&input);
        for pieces in [
            vec![&with_line_before[..]],
            vec![&with_line_before[..10], &with_line_before[10..]],
            vec![
                &with_line_before[..MAX_EVENT_BYTES],
                &with_line_before[MAX_EVENT_BYTES..],
            ],
        ] {
            assert_eq!(parse(&pieces), vec![line("{}", false), None]);
        }
        // Exactly at the limit is still a line.
        let mut input = vec![b' '; MAX_EVENT_BYTES - 2];
        input.extend_from_slice(b"{}\n");
        assert_eq!(parse(&[&input[..5], &input[5..]]), vec![line("{}", false)]);
    }
}
