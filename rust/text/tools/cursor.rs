//! A byte-at-a-time JSON validator for text that arrives in pieces.
//!
//! The tool-call parsers must stream a call's arguments while the model is still writing them,
//! yet never send anything that is not the start of valid JSON, and they must know where a value
//! ends without waiting for more. So the cursor checks the RFC 8259 grammar byte by byte (strict
//! numbers, escapes, literals, no control characters in strings), keeps the stack of open
//! containers, and can say how to close a value that was cut off so it still parses.
//!
//! Input is `&str`, so it is UTF-8 already; bytes above ASCII are only accepted inside strings.
//! Lone surrogates in `\u` escapes are not checked (Python's `json` accepts them too).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Number {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigits,
}

impl Number {
    fn next(self, byte: u8) -> Option<Number> {
        use Number::*;
        match (self, byte) {
            (Minus, b'0') => Some(Zero),
            (Minus, b'1'..=b'9') => Some(Int),
            (Int, b'0'..=b'9') => Some(Int),
            (Zero | Int, b'.') => Some(Dot),
            (Dot | Frac, b'0'..=b'9') => Some(Frac),
            (Zero | Int | Frac, b'e' | b'E') => Some(Exp),
            (Exp, b'+' | b'-') => Some(ExpSign),
            (Exp | ExpSign | ExpDigits, b'0'..=b'9') => Some(ExpDigits),
            _ => None,
        }
    }

    fn complete(self) -> bool {
        matches!(
            self,
            Number::Zero | Number::Int | Number::Frac | Number::ExpDigits
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a value: at the top, after `:`, or after `,` in an array.
    Value,
    /// Just after `[`: a value or `]`.
    ValueOrEnd,
    /// Just after `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a value inside a container: `,` or the closing bracket.
    CommaOrEnd,
    /// Inside a string; `escape` counts what follows a backslash (1: the backslash, 2..=5: `u`
    /// and the hex digits so far).
    Str {
        key: bool,
        escape: u8,
    },
    Num(Number),
    /// Inside `true`, `false` or `null`: the letters still to come.
    Literal(&'static [u8]),
    /// The top-level value is complete.
    Done,
}

/// Where a byte stands relative to the members of the outermost object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Whitespace, `:`, `,`, the outermost `{` (or anything not inside a member).
    Structure,
    /// A byte of a member's key, quotes included; `last` on its closing quote.
    Key { last: bool },
    /// A byte of a member's value; `first` and `last` mark its ends.
    Value { first: bool, last: bool },
    /// The outermost closing bracket: the value is complete.
    Close,
}

/// The bytes so far are not the start of valid JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

#[derive(Debug, Clone)]
pub struct JsonCursor {
    state: State,
    /// The open containers, `{` or `[`.
    stack: Vec<u8>,
}

impl Default for JsonCursor {
    fn default() -> Self {
        JsonCursor {
            state: State::Value,
            stack: Vec::new(),
        }
    }
}

impl JsonCursor {
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the next byte. Returns its role, and whether a number member ended just before it
    /// (numbers end only when something else follows them).
    pub fn push(&mut self, byte: u8) -> Result<(Role, bool), Invalid> {
        let mut number_ended = false;
        if let State::Num(number) = self.state {
            if let Some(next) = number.next(byte) {
                self.state = State::Num(next);
                return Ok((self.scalar_role(false), false));
            }
            if !number.complete() {
                return Err(Invalid);
            }
            number_ended = self.stack.len() == 1;
            self.after_value();
        }
        let depth = self.stack.len();
        let before = self.state;
        self.step(byte)?;
        let role = match before {
            State::KeyOrEnd | State::Key if depth == 1 && byte == b'"' => Role::Key { last: false },
            State::Str { key: true, .. } if depth == 1 => Role::Key {
                last: !matches!(self.state, State::Str { .. }),
            },
            State::Value if depth == 1 && !is_space(byte) => Role::Value {
                first: true,
                last: self.member_ended(),
            },
            State::CommaOrEnd | State::KeyOrEnd if depth == 1 && self.done() => Role::Close,
            _ if depth >= 2 => Role::Value {
                first: false,
                last: self.member_ended(),
            },
            State::Str { key: false, .. } | State::Literal(_) if depth == 1 => {
                self.scalar_role(false)
            }
            _ => Role::Structure,
        };
        Ok((role, number_ended))
    }

    /// After a byte inside a scalar member value.
    fn scalar_role(&self, first: bool) -> Role {
        if self.stack.len() == 1 {
            Role::Value {
                first,
                last: self.member_ended(),
            }
        } else if self.stack.len() >= 2 {
            Role::Value { first, last: false }
        } else {
            Role::Structure
        }
    }

    /// A member of the outermost object has just been completed.
    fn member_ended(&self) -> bool {
        self.stack.len() == 1 && self.state == State::CommaOrEnd
    }

    fn after_value(&mut self) {
        self.state = if self.stack.is_empty() {
            State::Done
        } else {
            State::CommaOrEnd
        };
    }

    fn step(&mut self, byte: u8) -> Result<(), Invalid> {
        match self.state {
            State::Str { key, escape } => {
                self.state = match (escape, byte) {
                    (0, b'"') if key => State::Colon,
                    (0, b'"') => {
                        self.after_value();
                        return Ok(());
                    }
                    (0, b'\\') => State::Str { key, escape: 1 },
                    (0, 0x00..=0x1f) => return Err(Invalid),
                    (0, _) => State::Str { key, escape: 0 },
                    (1, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                        State::Str { key, escape: 0 }
                    }
                    (1, b'u') => State::Str { key, escape: 2 },
                    (2..=4, _) if byte.is_ascii_hexdigit() => State::Str {
                        key,
                        escape: escape + 1,
                    },
                    (5, _) if byte.is_ascii_hexdigit() => State::Str { key, escape: 0 },
                    _ => return Err(Invalid),
                };
                Ok(())
            }
            State::Literal(rest) => {
                if rest.first() != Some(&byte) {
                    return Err(Invalid);
                }
                if rest.len() == 1 {
                    self.after_value();
                } else {
                    self.state = State::Literal(&rest[1..]);
                }
                Ok(())
            }
            _ if is_space(byte) => match self.state {
                State::Done | State::Num(_) => Err(Invalid), // numbers were ended by the caller
                _ => Ok(()),
            },
            State::Value | State::ValueOrEnd => {
                if byte == b']' && self.state == State::ValueOrEnd {
                    return self.close(b'[');
                }
                self.begin_value(byte)
            }
            State::KeyOrEnd | State::Key => match byte {
                b'"' => {
                    self.state = State::Str {
                        key: true,
                        escape: 0,
                    };
                    Ok(())
                }
                b'}' if self.state == State::KeyOrEnd => self.close(b'{'),
                _ => Err(Invalid),
            },
            State::Colon if byte == b':' => {
                self.state = State::Value;
                Ok(())
            }
            State::CommaOrEnd => match (byte, self.stack.last()) {
                (b',', Some(b'{')) => {
                    self.state = State::Key;
                    Ok(())
                }
                (b',', Some(b'[')) => {
                    self.state = State::Value;
                    Ok(())
                }
                (b'}', Some(b'{')) => self.close(b'{'),
                (b']', Some(b'[')) => self.close(b'['),
                _ => Err(Invalid),
            },
            State::Colon | State::Num(_) | State::Done => Err(Invalid),
        }
    }

    fn begin_value(&mut self, byte: u8) -> Result<(), Invalid> {
        self.state = match byte {
            b'{' => {
                self.stack.push(b'{');
                State::KeyOrEnd
            }
            b'[' => {
                self.stack.push(b'[');
                State::ValueOrEnd
            }
            b'"' => State::Str {
                key: false,
                escape: 0,
            },
            b'-' => State::Num(Number::Minus),
            b'0' => State::Num(Number::Zero),
            b'1'..=b'9' => State::Num(Number::Int),
            b't' => State::Literal(b"rue"),
            b'f' => State::Literal(b"alse"),
            b'n' => State::Literal(b"ull"),
            _ => return Err(Invalid),
        };
        Ok(())
    }

    fn close(&mut self, open: u8) -> Result<(), Invalid> {
        if self.stack.pop() != Some(open) {
            return Err(Invalid);
        }
        self.after_value();
        Ok(())
    }

    /// What to append so that the value opened at stack depth `level` (0: the top-level value,
    /// 1: a member of the outermost object) becomes complete, valid JSON: the scalar in progress
    /// is finished (a string closed, a number given a digit, a literal spelled out), a pending
    /// member gets `null`, and every container from `level` on is closed.
    pub fn closing(&self, level: usize) -> String {
        let mut out = String::new();
        match self.state {
            State::Str { key, escape } => {
                match escape {
                    1 => out.push('\\'),
                    2..=5 => out.extend(std::iter::repeat_n('0', 6 - escape as usize)),
                    _ => {}
                }
                out.push('"');
                if key {
                    out.push_str(":null");
                }
            }
            State::Num(number) if !number.complete() => out.push('0'),
            State::Literal(rest) => out.extend(rest.iter().map(|&b| b as char)),
            State::Colon => out.push_str(":null"),
            State::Value => out.push_str("null"),
            State::Key => out.push_str("\"\":null"),
            _ => {}
        }
        for &open in self.stack.iter().skip(level).rev() {
            out.push(if open == b'{' { '}' } else { ']' });
        }
        out
    }
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(text: &str) -> Result<Vec<(Role, bool)>, Invalid> {
        let mut cursor = JsonCursor::default();
        text.bytes().map(|b| cursor.push(b)).collect()
    }

    #[test]
    fn accepts_valid_and_rejects_invalid_json() {
        for good in [
            r#"{"a": [1, -0.5e+3, true, false, null, "x\"\\\u00e9"], "b": {}}"#,
            "[]",
            "\"é😀\"",
            "  {\n}",
        ] {
            let mut cursor = JsonCursor::default();
            for b in good.bytes() {
                cursor.push(b).unwrap();
            }
            assert!(cursor.done() || good.starts_with('"'), "{good}");
        }
        for bad in [
            "{a}",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.e",
            "tru ",
            "\"\u{1}\"",
            "\"\\x\"",
            "{}}",
            "[}",
        ] {
            assert!(roles(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_mark_members_of_the_outer_object() {
        let text = r#"{"k": {"x": 1}, "n": 12}"#;
        let got = roles(text).unwrap();
        let kinds: String = got
            .iter()
            .map(|(role, _)| match role {
                Role::Structure => '.',
                Role::Key { last: true } => 'K',
                Role::Key { .. } => 'k',
                Role::Value {
                    first: true,
                    last: true,
                } => '!',
                Role::Value { first: true, .. } => 'v',
                Role::Value { last: true, .. } => 'V',
                Role::Value { .. } => '-',
                Role::Close => 'C',
            })
            .collect();
        assert_eq!(kinds, ".kkK..v------V..kkK..v-C");
        // The number member ends when `}` arrives.
        assert!(got.last().unwrap().1);
    }

    #[test]
    fn closing_completes_a_cut_off_value() {
        for (prefix, closed) in [
            (r#"{"a": "x\"#, r#"{"a": "x\\"}"#),
            (r#"{"a": "\u00"#, r#"{"a": "\u0000"}"#),
            (r#"{"a": [1, tr"#, r#"{"a": [1, true]}"#),
            (r#"{"a": -"#, r#"{"a": -0}"#),
            (r#"{"a": 1.5"#, r#"{"a": 1.5}"#),
            (r#"{"a""#, r#"{"a":null}"#),
            (r#"{"a":"#, r#"{"a":null}"#),
            (r#"{"a":1,"#, r#"{"a":1,"":null}"#),
            (r#"{"a":[1,"#, r#"{"a":[1,null]}"#),
            (r#"{"a":{"#, r#"{"a":{}}"#),
            (r#"{"a"#, r#"{"a":null}"#),
        ] {
            let mut cursor = JsonCursor::default();
            for b in prefix.bytes() {
                cursor.push(b).unwrap();
            }
            let whole = format!("{prefix}{}", cursor.closing(0));
            assert_eq!(whole, closed);
            serde_json::from_str::<serde_json::Value>(&whole).unwrap();
        }
    }
}
