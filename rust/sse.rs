//! Incremental Server-Sent Events parser (the WHATWG `text/event-stream` rules), sans-IO.
//!
//! Bytes go in through [`SseParser::feed`] in whatever pieces the network delivered; complete
//! events come out through a callback. The output does not depend on where the input was split:
//! a CR at the end of one piece and an LF at the start of the next are one line ending, and a
//! UTF-8 BOM split across pieces is still stripped. Every SSE dialect shares this parser.

use std::ops::ControlFlow;

use memchr::memchr2;

/// Largest event (data plus the line being read) the parser buffers. Anything bigger is not a
/// model answer; refusing it bounds memory per response.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One dispatched event. `event` is empty when the event had no `event:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    pub event: &'a [u8],
    pub data: &'a [u8],
    /// Dispatched by `finish` without the blank line that ends an event: the stream may have
    /// been cut inside it.
    pub unterminated: bool,
}

/// What the parser hands to its consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseItem<'a> {
    Event(SseEvent<'a>),
    /// An event grew past [`MAX_EVENT_BYTES`]; the parser has stopped and drops further input.
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bom {
    /// At the start of the stream; this many BOM bytes have been matched so far.
    Matching(usize),
    Done,
}

/// Where the current event's data lives: while it is a single `data:` line inside the current
/// input it is not copied (the common case: one event per line pair, many per read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    None,
    InInput { start: usize, end: usize },
    Owned,
}

#[derive(Debug)]
pub struct SseParser {
    bom: Bom,
    /// The previous input ended with CR: an LF at the start of the next input ends no new line.
    after_cr: bool,
    /// An incomplete line carried over from the previous input.
    line: Vec<u8>,
    data: Data,
    owned_data: Vec<u8>,
    event: Vec<u8>,
    /// A comment or a `data`/`event`/`id`/`retry` line has been seen.
    saw_sse_line: bool,
    /// Set by `finish`: events dispatched from now on had no closing blank line.
    unterminated: bool,
    stopped: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub fn new() -> Self {
        SseParser {
            bom: Bom::Matching(0),
            after_cr: false,
            line: Vec::new(),
            data: Data::None,
            owned_data: Vec::new(),
            event: Vec::new(),
            saw_sse_line: false,
            unterminated: false,
            stopped: false,
        }
    }

    /// Whether the input so far had any line an event stream has (a comment, `data`, `event`,
    /// `id`, `retry`): tells a stream apart from, say, an HTML error page.
    pub fn saw_sse_line(&self) -> bool {
        self.saw_sse_line
    }

    /// Parses `input`, calling `sink` for each complete event. `sink` returns
    /// `ControlFlow::Break(())` to stop parsing for good (e.g. after `[DONE]`).
    pub fn feed<F>(&mut self, input: &[u8], sink: &mut F)
    where
        F: FnMut(SseItem<'_>) -> ControlFlow<()>,
    {
        if self.stopped {
            return;
        }
        let mut input = self.strip_bom(input);
        if self.after_cr && !input.is_empty() {
            self.after_cr = false;
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        let mut pos = 0;
        while pos < input.len() {
            let Some(offset) = memchr2(b'\r', b'\n', &input[pos..]) else {
                let tail = &input[pos..];
                if self.line.len() + tail.len() + self.data_len() > MAX_EVENT_BYTES {
                    self.too_large(sink);
                    return;
                }
                self.line.extend_from_slice(tail);
                break;
            };
            let end = pos + offset;
            let next = if input[end] == b'\n' {
                end + 1
            } else if end + 1 == input.len() {
                self.after_cr = true;
                end + 1
            } else if input[end + 1] == b'\n' {
                end + 2
            } else {
                end + 1
            };
            let flow = if self.line.is_empty() {
                self.on_line(input, pos, end, sink)
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&input[pos..end]);
                let flow = self.on_owned_line(&line, sink);
                line.clear();
                self.line = line;
                flow
            };
            if flow.is_break() {
                return;
            }
            pos = next;
        }
        // Data still pointing into `input` must outlive it.
        if let Data::InInput { start, end } = self.data {
            self.owned_data.clear();
            self.owned_data.extend_from_slice(&input[start..end]);
            self.data = Data::Owned;
        }
    }

    /// End of stream: a last line without a line ending and a last event without the blank
    /// line after it are still delivered.
    pub fn finish<F>(&mut self, sink: &mut F)
    where
        F: FnMut(SseItem<'_>) -> ControlFlow<()>,
    {
        if self.stopped {
            return;
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            if self.on_owned_line(&line, sink).is_break() {
                return;
            }
        }
        self.unterminated = true;
        let _ = self.dispatch(&[], sink);
        self.stopped = true;
    }

    fn strip_bom<'i>(&mut self, input: &'i [u8]) -> &'i [u8] {
        let Bom::Matching(mut matched) = self.bom else {
            return input;
        };
        let mut used = 0;
        while used < input.len() && matched < BOM.len() {
            if input[used] != BOM[matched] {
                // Not a BOM after all: the bytes taken so far are ordinary content.
                self.line.extend_from_slice(&BOM[..matched]);
                self.bom = Bom::Done;
                return &input[used..];
            }
            matched += 1;
            used += 1;
        }
        self.bom = if matched == BOM.len() {
            Bom::Done
        } else {
            Bom::Matching(matched)
        };
        &input[used..]
    }

    fn data_len(&self) -> usize {
        match self.data {
            Data::None => 0,
            Data::InInput { start, end } => end - start,
            Data::Owned => self.owned_data.len(),
        }
    }

    fn too_large<F>(&mut self, sink: &mut F)
    where
        F: FnMut(SseItem<'_>) -> ControlFlow<()>,
    {
        self.stopped = true;
        self.line = Vec::new();
        self.owned_data = Vec::new();
        self.data = Data::None;
        let _ = sink(SseItem::TooLarge);
    }

    /// A line lying wholly inside `input[start..end]`.
    fn on_line<F>(
        &mut self,
        input: &[u8],
        start: usize,
        end: usize,
        sink: &mut F,
    ) -> ControlFlow<()>
    where
        F: FnMut(SseItem<'_>) -> ControlFlow<()>,
    {
        let line = &input[start..end];
        if line.is_empty() {
            return self.dispatch(input, sink);
        }
        let (field, value_at) = split_field(line);
        if field == b"data" && self.data == Data::None {
            self.saw_sse_line = true;
            self.data = Data::InInput {
                start: start + value_at,
                end,
            };
            return self.check_size(sink);
        }
        self.on_field(input, field, &line[value_at..], sink)
    }

    /// A line assembled from pieces of several inputs.
    fn on_owned_line<F>(&mut self, line: &[u8], sink: &mut F) -> ControlFlow<()>
    where
        F: FnMut(SseItem<'_>) -> ControlFlow<()>,
    {
        if line.is_empty() {
            return self.dispatch(&[], sink);
        }
        let (field, value_at) = split_field(line);
        self.on_field(&[], field, &line[value_at..], sink)
    }

    fn on_field<F>(
        &mut self,
        input: &[u8],
        field: &[u8],
        value: &[u8],
        sink: &mut F,
    ) -> ControlFlow<()>
    where
        F: FnMut(SseItem<'_>) -> ControlFlow<()>,
    {
        if matches!(field, b"" | b"data" | b"event" | b"id" | b"retry") {
            self.saw_sse_line = true;
        }
        match field {
            b"data" => {
                match self.data {
                    Data::None => {
                        self.owned_data.clear();
                        self.owned_data.extend_from_slice(value);
                    }
                    Data::InInput { start, end } => {
                        self.owned_data.clear();
                        self.owned_data.extend_from_slice(&input[start..end]);
                        self.owned_data.push(b'\n');
                        self.owned_data.extend_from_slice(value);
                    }
                    Data::Owned => {
                        self.owned_data.push(b'\n');
                        self.owned_data.extend_from_slice(value);
                    }
                }
                self.data = Data::Owned;
                self.check_size(sink)
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
                ControlFlow::Continue(())
            }
            // Comments (empty field name), `id`, `retry` and unknown fields carry nothing here.
            _ => ControlFlow::Continue(()),
        }
    }

    fn check_size<F>(&mut self, sink: &mut F) -> ControlFlow<()>
    where
        F: FnMut(SseItem<'_>) -> ControlFlow<()>,
    {
        if self.data_len() > MAX_EVENT_BYTES {
            self.too_large(sink);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn dispatch<F>(&mut self, input: &[u8], sink: &mut F) -> ControlFlow<()>
    where
        F: FnMut(SseItem<'_>) -> ControlFlow<()>,
    {
        let data: &[u8] = match self.data {
            // Per WHATWG, a block without any `data:` line dispatches nothing.
            Data::None => {
                self.event.clear();
                return ControlFlow::Continue(());
            }
            Data::InInput { start, end } => &input[start..end],
            Data::Owned => &self.owned_data,
        };
        let flow = sink(SseItem::Event(SseEvent {
            event: &self.event,
            data,
            unterminated: self.unterminated,
        }));
        self.data = Data::None;
        self.event.clear();
        if flow.is_break() {
            self.stopped = true;
        }
        flow
    }
}

/// Splits `field:value` (one optional space after the colon is not part of the value). A line
/// without a colon is a field name with an empty value; a line starting with `:` is a comment,
/// which comes out as the empty field name.
fn split_field(line: &[u8]) -> (&[u8], usize) {
    match memchr::memchr(b':', line) {
        Some(colon) => {
            let value_at = if line.get(colon + 1) == Some(&b' ') {
                colon + 2
            } else {
                colon + 1
            };
            (&line[..colon], value_at)
        }
        None => (line, line.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Item {
        Event(String, String),
        TooLarge,
    }

    fn parse_pieces(pieces: &[&[u8]]) -> Vec<Item> {
        let mut items = Vec::new();
        let mut sink = |item: SseItem<'_>| {
            items.push(match item {
                SseItem::Event(e) => Item::Event(
                    String::from_utf8(e.event.to_vec()).unwrap(),
                    String::from_utf8(e.data.to_vec()).unwrap(),
                ),
                SseItem::TooLarge => Item::TooLarge,
            });
            ControlFlow::Continue(())
        };
        let mut parser = SseParser::new();
        for piece in pieces {
            parser.feed(piece, &mut sink);
        }
        parser.finish(&mut sink);
        items
    }

    /// Parses `input` whole, split in two at every position, and one byte at a time; all must
    /// agree. Returns the common result.
    fn parse_every_split(input: &[u8]) -> Vec<Item> {
        let whole = parse_pieces(&[input]);
        for cut in 0..=input.len() {
            assert_eq!(
                parse_pieces(&[&input[..cut], &input[cut..]]),
                whole,
                "split at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(parse_pieces(&bytes), whole, "byte by byte");
        whole
    }

    fn ev(event: &str, data: &str) -> Item {
        Item::Event(event.into(), data.into())
    }

    #[test]
    fn every_line_ending_gives_the_same_events() {
        for ending in ["\n", "\r\n", "\r"] {
            let input = "data: a\n\ndata:b\n\n".replace('\n', ending);
            assert_eq!(
                parse_every_split(input.as_bytes()),
                vec![ev("", "a"), ev("", "b")],
                "{ending:?}"
            );
        }
    }

    #[test]
    fn cr_then_lf_across_pieces_is_one_line_ending() {
        // If the split CR LF counted twice, the second data line would become a separate event.
        let items = parse_pieces(&[b"data: a\r", b"\ndata: b\r\n\r\n"]);
        assert_eq!(items, vec![ev("", "a\nb")]);
    }

    #[test]
    fn comments_ids_retry_and_unknown_fields_are_ignored() {
        let input = b": ping\nid: 7\nretry: 100\nfoo: bar\nnocolon\ndata: x\n\n:\n\n";
        assert_eq!(parse_every_split(input), vec![ev("", "x")]);
    }

    #[test]
    fn event_names_stay_with_their_event_only() {
        let input = b"event: error\ndata: {\"e\":1}\n\ndata: next\n\n";
        assert_eq!(
            parse_every_split(input),
            vec![ev("error", "{\"e\":1}"), ev("", "next")]
        );
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let input = b"data: one\ndata:two\ndata:\ndata:  four\n\n";
        assert_eq!(parse_every_split(input), vec![ev("", "one\ntwo\n\n four")]);
    }

    #[test]
    fn bom_is_stripped_only_at_the_start() {
        let input = b"\xEF\xBB\xBFdata: a\n\ndata: \xEF\xBB\xBFb\n\n";
        assert_eq!(
            parse_every_split(input),
            vec![ev("", "a"), ev("", "\u{feff}b")]
        );
    }

    #[test]
    fn a_partial_bom_prefix_is_content() {
        // EF BB followed by something else is not a BOM; the bytes belong to the first line,
        // which then has no recognised field and is ignored, so the next event still parses.
        let items = parse_pieces(&[b"\xEF", b"\xBBx\ndata: a\n\n"]);
        assert_eq!(items, vec![ev("", "a")]);
    }

    #[test]
    fn last_event_without_blank_line_is_dispatched_by_finish() {
        assert_eq!(
            parse_every_split(b"data: a\n\ndata: b"),
            vec![ev("", "a"), ev("", "b")]
        );
        assert_eq!(parse_every_split(b"data: a\n"), vec![ev("", "a")]);
    }

    #[test]
    fn blocks_without_data_dispatch_nothing() {
        assert_eq!(parse_every_split(b"event: x\n\n\n\n: c\n\n"), vec![]);
    }

    #[test]
    fn empty_data_line_dispatches_an_empty_event() {
        assert_eq!(parse_every_split(b"data:\n\n"), vec![ev("", "")]);
    }

    #[test]
    fn stop_from_the_consumer_ends_parsing() {
        let mut parser = SseParser::new();
        let mut seen = Vec::new();
        let mut sink = |item: SseItem<'_>| {
            if let SseItem::Event(e) = item {
                seen.push(e.data.to_vec());
            }
            ControlFlow::Break(())
        };
        parser.feed(b"data: a\n\ndata: b\n\n", &mut sink);
        parser.feed(b"data: c\n\n", &mut sink);
        parser.finish(&mut sink);
        assert_eq!(seen, vec![b"a".to_vec()]);
        assert!(parser.stopped);
    }

    #[test]
    fn tells_event_streams_from_other_text() {
        for (input, expected) in [
            (&b"<html>\r\n<body>x</body>"[..], false),
            (b"", false),
            (b": ping\n\n", true),
            (b"retry: 1\n", true),
            (b"data: x", true),
        ] {
            let mut parser = SseParser::new();
            let mut sink = |_: SseItem<'_>| ControlFlow::Continue(());
            parser.feed(input, &mut sink);
            parser.finish(&mut sink);
            assert_eq!(parser.saw_sse_line(), expected, "{input:?}");
        }
    }

    #[test]
    fn oversized_event_is_refused_not_buffered() {
        let mut parser = SseParser::new();
        let mut items = Vec::new();
        let mut sink = |item: SseItem<'_>| {
            items.push(matches!(item, SseItem::TooLarge));
            ControlFlow::Continue(())
        };
        let line = vec![b'x'; 1024 * 1024];
        parser.feed(b"data: ", &mut sink);
        for _ in 0..17 {
            parser.feed(&line, &mut sink);
        }
        parser.feed(b"\n\ndata: after\n\n", &mut sink);
        parser.finish(&mut sink);
        assert_eq!(items, vec![true]);
        assert!(parser.line.capacity() == 0 && parser.owned_data.capacity() == 0);
    }

    #[test]
    fn many_data_lines_are_bounded_too() {
        let mut parser = SseParser::new();
        let mut too_large = false;
        let mut sink = |item: SseItem<'_>| {
            too_large |= matches!(item, SseItem::TooLarge);
            ControlFlow::Continue(())
        };
        let mut chunk = Vec::new();
        for _ in 0..1024 {
            chunk.extend_from_slice(b"data: ");
            chunk.extend_from_slice(&[b'y'; 1024]);
            chunk.push(b'\n');
        }
        for _ in 0..17 {
            parser.feed(&chunk, &mut sink);
        }
        assert!(too_large);
    }
}
