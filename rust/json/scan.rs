//! A strict single-pass JSON scanner for the streaming hot path.
//!
//! It finds the members of one JSON object as byte spans of the input — keys and raw values,
//! exactly the spans serde_json's `RawValue` would borrow — without building anything or
//! allocating. It accepts only what the full path (UTF-8 check, then serde_json) accepts:
//! RFC 8259 strict numbers and escapes, no control characters in strings, nothing after the
//! object but whitespace, and UTF-8 (checked inside strings, the only place JSON allows
//! anything but ASCII). So a chunk it passes is a chunk the full parser would have passed,
//! member for member; the tests hold it to that, down to random single-byte edits.
//!
//! It gives up on what it does not need to handle fast: keys with escapes, nesting deeper than
//! [`MAX_DEPTH`] and anything invalid. The caller then takes the full serde_json path, which
//! decides — so giving up is always safe, and rare input costs a second parse, never a
//! different answer.

use std::ops::Range;

/// The scanner gave up; use the full parser.
#[derive(Debug, PartialEq, Eq)]
pub struct GiveUp;

type Scan<T> = Result<T, GiveUp>;

/// Deeper nesting than any chat chunk has; the full parser takes it from here.
pub const MAX_DEPTH: usize = 64;

/// One member of a scanned object, as positions in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The key's bytes between its quotes.
    pub key: Range<usize>,
    /// The value's raw text.
    pub value: Range<usize>,
}

impl Member {
    /// Where `"key":value` stands in the input, when nothing but the colon separates them.
    pub fn compact(&self) -> Option<Range<usize>> {
        (self.value.start == self.key.end + 2).then(|| self.key.start - 1..self.value.end)
    }
}

/// Calls `on_member` for each member of the JSON object `text`, in order. Gives up unless `text`
/// is exactly one valid JSON object (surrounding whitespace allowed) whose keys have no escapes.
///
/// The scan also checks that `text` is UTF-8 (only strings may hold anything but ASCII), so a
/// completed scan vouches for every span as text.
///
/// `on_member` may already have been called for some members when the scan gives up.
pub fn object_members<F>(text: &[u8], mut on_member: F) -> Scan<()>
where
    F: FnMut(Member),
{
    object_members_with(text, |key, value| {
        let end = value.skip(text)?;
        on_member(Member {
            key,
            value: value.start..end,
        });
        Ok(end)
    })
}

/// Where a member's value starts, for a caller that reads the value itself: it skips the value
/// or reads it as an object, and either way learns where the value ends.
#[derive(Debug, Clone, Copy)]
pub struct ValueAt {
    pub start: usize,
    /// Containers open around the value.
    depth: usize,
}

impl ValueAt {
    /// Checks the value and returns where it ends.
    #[inline]
    pub fn skip(self, text: &[u8]) -> Scan<usize> {
        value(text, self.start, self.depth)
    }

    /// Reads the value as an object, member by member, as [`object_members_with`] reads the
    /// outermost one; gives up if it is not an object. Returns where it ends.
    #[inline]
    pub fn object_with<F>(self, text: &[u8], on_member: F) -> Scan<usize>
    where
        F: FnMut(Range<usize>, ValueAt) -> Scan<usize>,
    {
        let at = expect(text, self.start, b'{')?;
        members(text, at, self.depth + 1, on_member)
    }
}

/// Like [`object_members`], for a caller that reads some values itself (descending into a
/// nested object in the same pass): `on_member` gets each key's span and where its value starts,
/// reads the value and returns where it ends, or gives up.
pub fn object_members_with<F>(text: &[u8], on_member: F) -> Scan<()>
where
    F: FnMut(Range<usize>, ValueAt) -> Scan<usize>,
{
    let at = skip_whitespace(text, 0);
    let at = expect(text, at, b'{')?;
    let at = members(text, at, 1, on_member)?;
    if skip_whitespace(text, at) == text.len() {
        Ok(())
    } else {
        Err(GiveUp)
    }
}

/// The members of an object whose `{` ends before `at`, `depth` containers open counting this
/// one; returns the position after its `}`. Unlike [`object`], which only checks, it gives up on
/// escaped keys: its caller compares them.
#[inline(always)]
fn members<F>(text: &[u8], mut at: usize, depth: usize, mut on_member: F) -> Scan<usize>
where
    F: FnMut(Range<usize>, ValueAt) -> Scan<usize>,
{
    if depth > MAX_DEPTH {
        return Err(GiveUp);
    }
    at = skip_whitespace(text, at);
    if text.get(at) == Some(&b'}') {
        return Ok(at + 1);
    }
    loop {
        let key_start = expect(text, at, b'"')?;
        let (after_key, escaped) = string(text, key_start)?;
        if escaped {
            return Err(GiveUp); // an escaped key: the full parser decodes it
        }
        at = skip_whitespace(text, after_key);
        at = expect(text, at, b':')?;
        let start = skip_whitespace(text, at);
        at = on_member(key_start..after_key - 1, ValueAt { start, depth })?;
        at = skip_whitespace(text, at);
        match text.get(at) {
            Some(b',') => at = skip_whitespace(text, at + 1),
            Some(b'}') => return Ok(at + 1),
            _ => return Err(GiveUp),
        }
    }
}

/// Whether `text` is one valid JSON value (surrounding whitespace allowed), by the same rules.
#[cfg(test)]
pub fn is_valid(text: &[u8]) -> bool {
    let start = skip_whitespace(text, 0);
    match value(text, start, 0) {
        Ok(end) => skip_whitespace(text, end) == text.len(),
        Err(GiveUp) => false,
    }
}

// The scanner is free functions over (input, position) returning the next position, so the
// position lives in a register rather than behind a `&mut`.

#[inline]
fn skip_whitespace(text: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = text.get(at) {
        at += 1;
    }
    at
}

#[inline]
fn expect(text: &[u8], at: usize, byte: u8) -> Scan<usize> {
    if text.get(at) == Some(&byte) {
        Ok(at + 1)
    } else {
        Err(GiveUp)
    }
}

/// One value starting at `at` (no leading whitespace), `depth` containers already open; returns
/// the position after it.
fn value(text: &[u8], at: usize, depth: usize) -> Scan<usize> {
    match text.get(at) {
        Some(b'"') => string(text, at + 1).map(|(end, _)| end),
        Some(b'{') => object(text, at + 1, depth + 1),
        Some(b'[') => array(text, at + 1, depth + 1),
        Some(b'n') => literal(text, at, b"null"),
        Some(b't') => literal(text, at, b"true"),
        Some(b'f') => literal(text, at, b"false"),
        Some(b'-') => number(text, at + 1),
        Some(b'0'..=b'9') => number(text, at),
        _ => Err(GiveUp),
    }
}

fn object(text: &[u8], mut at: usize, depth: usize) -> Scan<usize> {
    if depth > MAX_DEPTH {
        return Err(GiveUp);
    }
    at = skip_whitespace(text, at);
    if text.get(at) == Some(&b'}') {
        return Ok(at + 1);
    }
    loop {
        at = expect(text, at, b'"')?;
        at = string(text, at)?.0;
        at = skip_whitespace(text, at);
        at = expect(text, at, b':')?;
        at = skip_whitespace(text, at);
        at = value(text, at, depth)?;
        at = skip_whitespace(text, at);
        match text.get(at) {
            Some(b',') => at = skip_whitespace(text, at + 1),
            Some(b'}') => return Ok(at + 1),
            _ => return Err(GiveUp),
        }
    }
}

fn array(text: &[u8], mut at: usize, depth: usize) -> Scan<usize> {
    if depth > MAX_DEPTH {
        return Err(GiveUp);
    }
    at = skip_whitespace(text, at);
    if text.get(at) == Some(&b']') {
        return Ok(at + 1);
    }
    loop {
        at = value(text, at, depth)?;
        at = skip_whitespace(text, at);
        match text.get(at) {
            Some(b',') => at = skip_whitespace(text, at + 1),
            Some(b']') => return Ok(at + 1),
            _ => return Err(GiveUp),
        }
    }
}

#[inline]
fn literal(text: &[u8], at: usize, word: &[u8]) -> Scan<usize> {
    if text[at..].starts_with(word) {
        Ok(at + word.len())
    } else {
        Err(GiveUp)
    }
}

/// `(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` at `at` (any minus sign already taken).
fn number(text: &[u8], at: usize) -> Scan<usize> {
    let mut at = match text.get(at) {
        Some(b'0') => at + 1,
        Some(b'1'..=b'9') => digits(text, at + 1),
        _ => return Err(GiveUp),
    };
    if text.get(at) == Some(&b'.') {
        at = some_digits(text, at + 1)?;
    }
    if let Some(b'e' | b'E') = text.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = text.get(at) {
            at += 1;
        }
        at = some_digits(text, at)?;
    }
    // A digit right after a leading zero ("01") is not a number.
    match text.get(at) {
        Some(b'0'..=b'9') => Err(GiveUp),
        _ => Ok(at),
    }
}

#[inline]
fn digits(text: &[u8], mut at: usize) -> usize {
    while let Some(b'0'..=b'9') = text.get(at) {
        at += 1;
    }
    at
}

fn some_digits(text: &[u8], at: usize) -> Scan<usize> {
    let end = digits(text, at);
    if end == at {
        Err(GiveUp)
    } else {
        Ok(end)
    }
}

/// The rest of a string whose opening quote ends before `at`; returns the position after the
/// closing quote and whether the string had escapes.
///
/// Most strings in a chunk are short keys and tokens with nothing special in them: that case is
/// inlined, the rest (escapes, non-ASCII text) is a call away.
#[inline(always)]
fn string(text: &[u8], at: usize) -> Scan<(usize, bool)> {
    let at = skip_plain_string_bytes(text, at);
    match text.get(at) {
        Some(b'"') => Ok((at + 1, false)),
        _ => string_slow(text, at),
    }
}

#[inline(never)]
fn string_slow(text: &[u8], mut at: usize) -> Scan<(usize, bool)> {
    let mut escaped = false;
    loop {
        match text.get(at) {
            Some(b'"') => return Ok((at + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                at = escape(text, at + 1)?;
            }
            Some(&byte) if byte >= 0x80 => at = utf8_char(text, at)?,
            _ => return Err(GiveUp), // a raw control character, or the end of the input
        }
        at = skip_plain_string_bytes(text, at);
    }
}

/// The first position from `at` holding `"`, `\`, a control character or a non-ASCII byte,
/// found eight bytes at a time. The bit trick is serde_json's (a byte is flagged when its high
/// bit is set after the subtraction and was clear before), plus the high bit itself; the lowest
/// flagged byte is exact because borrows only run upwards.
#[inline(always)]
fn skip_plain_string_bytes(text: &[u8], mut at: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    while let Some(chunk) = text.get(at..at + 8) {
        let chars = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let control = chars.wrapping_sub(ONES * 0x20) & !chars;
        let quote = chars ^ (ONES * u64::from(b'"'));
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = chars ^ (ONES * u64::from(b'\\'));
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        let found = (control | quote | backslash | chars) & HIGH;
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&byte) = text.get(at) {
        if byte == b'"' || byte == b'\\' || !(0x20..0x80).contains(&byte) {
            break;
        }
        at += 1;
    }
    at
}

/// An escape after its backslash: `\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t` or `\uXXXX`.
/// (Like serde_json when it skips a value, lone surrogates are not checked.)
fn escape(text: &[u8], at: usize) -> Scan<usize> {
    match text.get(at) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 1),
        Some(b'u') => match text.get(at + 1..at + 5) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(at + 5),
            _ => Err(GiveUp),
        },
        _ => Err(GiveUp),
    }
}

/// One UTF-8 encoded character starting at `at` (a byte >= 0x80), by the table of RFC 3629
/// (no overlong forms, no surrogates, nothing above U+10FFFF); returns the position after it.
fn utf8_char(text: &[u8], at: usize) -> Scan<usize> {
    let continuation = |i: usize, range: std::ops::RangeInclusive<u8>| match text.get(at + i) {
        Some(byte) if range.contains(byte) => Ok(()),
        _ => Err(GiveUp),
    };
    let tail = 0x80..=0xBF;
    let width = match text[at] {
        0xC2..=0xDF => 2,
        0xE0 => {
            continuation(1, 0xA0..=0xBF)?;
            3
        }
        0xE1..=0xEC | 0xEE..=0xEF => {
            continuation(1, tail.clone())?;
            3
        }
        0xED => {
            continuation(1, 0x80..=0x9F)?;
            3
        }
        0xF0 => {
            continuation(1, 0x90..=0xBF)?;
            4
        }
        0xF1..=0xF3 => {
            continuation(1, tail.clone())?;
            4
        }
        0xF4 => {
            continuation(1, 0x80..=0x8F)?;
            4
        }
        _ => return Err(GiveUp),
    };
    let first_checked = if width == 2 { 1 } else { 2 };
    for i in first_checked..width {
        continuation(i, tail.clone())?;
    }
    Ok(at + width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Scan<Vec<(String, String)>> {
        let mut seen = Vec::new();
        object_members(text.as_bytes(), |member| {
            let text = |span: Range<usize>| text[span].to_owned();
            seen.push((text(member.key), text(member.value)))
        })?;
        Ok(seen)
    }

    /// What the full path says about `bytes` as one value: UTF-8, then serde_json.
    fn full_parser_accepts(bytes: &[u8]) -> bool {
        std::str::from_utf8(bytes)
            .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
    }

    #[test]
    fn members_are_the_spans_serde_would_borrow() {
        let text = " {\"b\" : 1.50 ,\"a\":{\"x\" : [1, 2]},\"s\":\"q\\\"\\u00e9\",\"n\":null}\r\n";
        assert_eq!(
            members(text).unwrap(),
            [
                ("b", "1.50"),
                ("a", "{\"x\" : [1, 2]}"),
                ("s", "\"q\\\"\\u00e9\""),
                ("n", "null"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let mut serde_seen = Vec::new();
        crate::json::for_each_member(text, |k, v| {
            serde_seen.push((k.as_str().to_owned(), v.get().to_owned()))
        })
        .unwrap();
        assert_eq!(members(text).unwrap(), serde_seen);
        assert_eq!(members("{}").unwrap(), []);
    }

    #[test]
    fn compact_members_know_their_whole_span() {
        let text = br#"{"a":1,"b" :2,"c": 3,"d":[4]}"#;
        let mut spans = Vec::new();
        object_members(text, |member| {
            spans.push(member.compact().map(|span| text[span].to_vec()))
        })
        .unwrap();
        assert_eq!(
            spans,
            [Some(&br#""a":1"#[..]), None, None, Some(br#""d":[4]"#)]
                .map(|s| s.map(<[u8]>::to_vec))
        );
    }

    #[test]
    fn gives_up_on_escaped_keys_and_anything_but_one_object() {
        for text in [
            r#"{"\u0063":1}"#,
            "[1]",
            "\"x\"",
            "1",
            "null",
            "{} {}",
            "{\"a\":}",
            "{\"a\":1",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{,}",
            "",
        ] {
            assert_eq!(members(text), Err(GiveUp), "{text}");
        }
    }

    /// Numbers, literals, strings (escapes, control characters, non-ASCII) and containers, valid
    /// and not.
    #[rustfmt::skip]
    const VALUES: &[&str] = &[
        "0", "-0", "01", "-01", "1.", "1.5", ".5", "-", "1e", "1e+", "1e+5", "1E-05", "1.5e3",
        "-1.0e-0", "2x", "+1", "1.e5", "0.0", "00",
        "true", "tru", "truex", "nul", "null", "false", "falsey",
        "\"\"", "\"a", "\"\\u12\"", "\"\\u12g4\"", "\"\\uD800\"", "\"\\x\"", "\"\\/\"",
        "\"tab\there\"", "\"nl\nhere\"", "\"\u{7f}\u{e9}\u{1F600}\"",
        "\"a very long string without anything special in it at all\"",
        "\"long string with a \\\" quote and \\\\ backslash in the middle of it\"",
        "[]", "[ ]", "[1,]", "[,1]", "[1 2]", "[[[]]]", "{}", "{ }", "{\"a\":1,\"a\":2}",
        "{\"a\":[{\"b\":{}}]}", "{\"a\"}", "{1:2}", "{\"a\":1}}", "[1]]", " [ 1 , 2 ] ",
        "\u{c}1", "1\u{c}", "[\"\u{1}\"]", "[\"\u{10FFFF}\u{800}\u{FFFF}\u{80}\"]",
    ];

    #[test]
    fn validity_agrees_with_the_full_parser() {
        for text in VALUES {
            assert_eq!(
                is_valid(text.as_bytes()),
                full_parser_accepts(text.as_bytes()),
                "{text:?}"
            );
        }
        // Every prefix of a realistic chunk: a cut anywhere is invalid for both.
        let chunk = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hi \"there\"\n ünï 😀"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":1,"cost":9.24e-05}}"#;
        for cut in 0..=chunk.len() {
            let bytes = &chunk.as_bytes()[..cut];
            assert_eq!(is_valid(bytes), full_parser_accepts(bytes), "{bytes:?}");
        }
    }

    /// Random single-byte edits of realistic chunks (a fixed-seed generator, so a failure
    /// repeats): the scanner and the full parser must agree on every one.
    #[test]
    fn mutated_chunks_are_judged_like_the_full_parser_does() {
        let chunks = [
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" fox é"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\": [1, -2.5e3, true]}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":14,"cost":9.24e-05}}"#,
        ];
        let alphabet =
            b"{}[]\",:\\ -+.0123456789eEnulltrufas\t\r\n\x00\x1f\x7f\x80\xbf\xc3\xe2\xed\xf0\xff";
        let mut edits = crate::json::edits::OneByteEdits::new();
        for chunk in chunks {
            for _ in 0..20_000 {
                let bytes = edits.edit(chunk.as_bytes(), alphabet);
                let shown = String::from_utf8_lossy(&bytes);
                assert_eq!(is_valid(&bytes), full_parser_accepts(&bytes), "{shown:?}");
                // As a chunk: never accepted when the full walk fails, and only escaped keys
                // (so: only with a backslash about) are left to it.
                let scanned = object_members(&bytes, |_| {}).is_ok();
                let walked = std::str::from_utf8(&bytes)
                    .is_ok_and(|text| crate::json::for_each_member(text, |_, _| {}).is_ok());
                assert!(!scanned || walked, "{shown:?}");
                assert!(scanned || !walked || bytes.contains(&b'\\'), "{shown:?}");
            }
        }
    }

    #[test]
    fn utf8_is_checked_like_std_does() {
        // Every one- and two-byte tail after a lead byte, inside a string and outside one.
        for lead in 0x80..=0xFFu8 {
            for second in [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF] {
                for third in [0x80, 0xBF, 0x22, 0x41] {
                    for fourth in [0x80, 0xBF, 0x22] {
                        let seq = [lead, second, third, fourth];
                        let mut in_string = b"[\"".to_vec();
                        in_string.extend_from_slice(&seq);
                        in_string.extend_from_slice(b"x\"]");
                        assert_eq!(
                            is_valid(&in_string),
                            full_parser_accepts(&in_string),
                            "{in_string:x?}"
                        );
                        let mut bare = b"[".to_vec();
                        bare.extend_from_slice(&seq);
                        bare.push(b']');
                        assert!(!is_valid(&bare), "{bare:x?}");
                    }
                }
            }
        }
    }

    #[test]
    fn plain_string_skip_stops_exactly_at_each_special_byte() {
        for at in 0..20 {
            for special in ["\"", "\\n\"", "\u{1}\"", "é\""] {
                let text = format!("\"{}{special}", "é".repeat(at / 2) + &"a".repeat(at % 2));
                assert_eq!(
                    is_valid(text.as_bytes()),
                    full_parser_accepts(text.as_bytes()),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn deep_nesting_is_left_to_the_full_parser() {
        let deep = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert_eq!(members(&deep), Err(GiveUp));
        let shallow = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(members(&shallow).unwrap().len(), 1);
    }
}
