//! Test helpers for the formats: run a text through the parser in every split and check that
//! the result is always the same and that a call's pieces are well-formed.

use super::{ToolFormat, ToolParser};
use crate::text::{Released, TextSink};

/// What a text turned into.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub content: String,
    /// (index, name, arguments).
    pub calls: Vec<(u64, String, String)>,
}

impl Parsed {
    /// All content, no call.
    pub fn text(text: &str) -> Self {
        Parsed {
            content: text.into(),
            calls: Vec::new(),
        }
    }
}

pub fn call(index: u64, name: &str, arguments: &str) -> (u64, String, String) {
    (index, name.into(), arguments.into())
}

pub fn run(format: ToolFormat, pieces: &[&str]) -> Parsed {
    let mut parser = ToolParser::new(format);
    let mut out = Released::default();
    for piece in pieces {
        parser.push(piece, &mut out);
    }
    parser.finish(&mut out);
    let mut parsed = Parsed {
        content: out.content,
        calls: Vec::new(),
    };
    for piece in out.calls {
        match piece.name {
            Some(name) => {
                assert_eq!(piece.index, parsed.calls.len() as u64, "indices count up");
                parsed.calls.push((piece.index, name, piece.arguments));
            }
            None => {
                let last = parsed.calls.last_mut().expect("arguments after a header");
                assert_eq!(last.0, piece.index, "arguments of the open call");
                last.2.push_str(&piece.arguments);
            }
        }
    }
    for (_, _, arguments) in &parsed.calls {
        let value: serde_json::Value = serde_json::from_str(arguments)
            .unwrap_or_else(|e| panic!("arguments {arguments:?} are not JSON: {e}"));
        assert!(value.is_object(), "{arguments}");
    }
    assert_eq!(parser.calls(), parsed.calls.len() as u64);
    parsed
}

/// Whole, split in two at every char boundary, char by char, and in three at every pair of
/// boundaries for short texts: all the same.
pub fn every_split(format: ToolFormat, text: &str) -> Parsed {
    let whole = run(format, &[text]);
    let bounds: Vec<usize> = text.char_indices().map(|(at, _)| at).collect();
    for &at in &bounds {
        assert_eq!(
            run(format, &[&text[..at], &text[at..]]),
            whole,
            "split at {at}"
        );
    }
    if bounds.len() <= 80 {
        for &a in &bounds {
            for &b in bounds.iter().filter(|&&b| b > a) {
                assert_eq!(
                    run(format, &[&text[..a], &text[a..b], &text[b..]]),
                    whole,
                    "split at {a} and {b}"
                );
            }
        }
    }
    let chars: Vec<String> = text.chars().map(String::from).collect();
    let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(run(format, &pieces), whole, "char by char");
    whole
}

/// A sink that records the order of everything, for tests that check what goes out when.
#[derive(Default)]
pub struct Log(pub Vec<String>);

impl TextSink for Log {
    fn content(&mut self, text: &str) {
        self.0.push(format!("content {text}"));
    }
    fn reasoning(&mut self, text: &str) {
        self.0.push(format!("reasoning {text}"));
    }
    fn tool_call(&mut self, index: u64, name: &str) {
        self.0.push(format!("call {index} {name}"));
    }
    fn tool_arguments(&mut self, index: u64, fragment: &str) {
        self.0.push(format!("arguments {index} {fragment}"));
    }
}
