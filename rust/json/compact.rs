//! JSON text without the whitespace between its tokens: how a whole JSON value (Ollama's tool
//! arguments object, Anthropic's `input`) becomes an OpenAI `arguments` string.

/// `json` without the whitespace between its tokens (strings and numbers stay as written).
pub fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_goes_strings_stay() {
        assert_eq!(
            compact("{ \"a b\" : [1, 2.50],\n\t\"c\\\"\": \" x \" }"),
            "{\"a b\":[1,2.50],\"c\\\"\":\" x \"}"
        );
        assert_eq!(compact(r#"{"a\\":"b \\"}"#), r#"{"a\\":"b \\"}"#);
    }
}
