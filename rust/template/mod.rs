//! Chat templates: a conversation (OpenAI messages, as JSON) → the raw prompt a native
//! text-generation endpoint takes, rendered with the model's own Hugging Face Jinja template.
//!
//! A `ChatTemplate` compiles its source once; `render` parses the messages straight from the
//! JSON bytes into template values (no Python object walk) and runs the compiled template.

pub mod bindings;
mod environment;
mod families;
mod pythonic;
mod strftime;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use minijinja::value::ValueKind;
use minijinja::{Environment, Value};

pub use families::FAMILY_NAMES;

/// Why a template could not be compiled or rendered; the message is meant for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

/// Variables the caller's own arguments set; `extra` may not shadow them (transformers refuses
/// them twice too).
const RESERVED_VARIABLES: [&str; 4] = ["messages", "tools", "documents", "add_generation_prompt"];

/// A compiled chat template with its special tokens and end-of-turn strings.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    name: String,
    // Shared between a built-in family and its overridden copies: compiling is the costly part.
    env: Arc<Environment<'static>>,
    bos_token: String,
    eos_token: String,
    stop: Vec<String>,
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error names the template, the line and what is wrong.
    pub fn new(
        name: &str,
        source: &str,
        bos_token: &str,
        eos_token: &str,
        stop: &[String],
    ) -> Result<Self, TemplateError> {
        let mut env = environment::hugging_face_environment();
        env.add_template_owned(name.to_owned(), source.to_owned())
            .map_err(|err| {
                TemplateError(format!(
                    "chat template {name:?} has a syntax error on line {}: {}; fix the template \
                     source (Hugging Face Jinja syntax)",
                    err.line().unwrap_or(0),
                    error_detail(&err),
                ))
            })?;
        Ok(ChatTemplate {
            name: name.to_owned(),
            env: Arc::new(env),
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
            stop: merge_stop(&[], stop)?,
        })
    }

    /// The built-in template of `family` (one of `FAMILY_NAMES`), compiled on first use.
    pub fn builtin(family: &str) -> Result<&'static ChatTemplate, TemplateError> {
        static COMPILED: OnceLock<Vec<ChatTemplate>> = OnceLock::new();
        let compiled = COMPILED.get_or_init(|| {
            families::FAMILIES
                .iter()
                .map(|family| {
                    let stop: Vec<String> = family.stop.iter().map(|s| s.to_string()).collect();
                    ChatTemplate::new(
                        family.name,
                        family.source,
                        family.bos_token,
                        family.eos_token,
                        &stop,
                    )
                    .expect("built-in templates compile (tested)")
                })
                .collect()
        });
        compiled
            .iter()
            .find(|template| template.name == family)
            .ok_or_else(|| {
                TemplateError(format!(
                    "unknown chat template family {family:?}; the built-in families are {}",
                    FAMILY_NAMES.join(", ")
                ))
            })
    }

    /// The built-in template whose family matches `model_id`, or `None`.
    pub fn for_model(model_id: &str) -> Option<&'static ChatTemplate> {
        let family = families::for_model(model_id)?;
        ChatTemplate::builtin(family.name).ok()
    }

    /// A copy with other special tokens and more stop strings (a per-model config override).
    pub fn with_overrides(
        &self,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
        extra_stop: &[String],
    ) -> Result<ChatTemplate, TemplateError> {
        Ok(ChatTemplate {
            name: self.name.clone(),
            env: Arc::clone(&self.env),
            bos_token: bos_token.unwrap_or(&self.bos_token).to_owned(),
            eos_token: eos_token.unwrap_or(&self.eos_token).to_owned(),
            stop: merge_stop(&self.stop, extra_stop)?,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// The end-of-turn strings, then the extra stop strings, without duplicates.
    pub fn stop(&self) -> &[String] {
        &self.stop
    }

    /// Renders the prompt. `messages_json` is a JSON array of messages, `tools_json` a JSON
    /// array of tools (or `null`), `extra_json` a JSON object of further template variables
    /// (e.g. `{"enable_thinking": false}` or `{"date_string": "26 Jul 2024"}`).
    pub fn render(
        &self,
        messages_json: &[u8],
        add_generation_prompt: bool,
        tools_json: Option<&[u8]>,
        extra_json: Option<&[u8]>,
    ) -> Result<String, TemplateError> {
        let messages = parse_json("messages_json", messages_json)?;
        if messages.kind() != ValueKind::Seq {
            return Err(TemplateError(
                "messages_json must be a JSON array of message objects".to_owned(),
            ));
        }
        let tools = match tools_json {
            Some(bytes) => parse_json("tools_json", bytes)?,
            None => Value::from(()),
        };
        if !matches!(tools.kind(), ValueKind::Seq | ValueKind::None) {
            return Err(TemplateError(
                "tools_json must be a JSON array of tool objects (or null)".to_owned(),
            ));
        }

        // As transformers: special tokens first, extra variables may override them, the
        // conversation itself is set by the arguments.
        let mut context: BTreeMap<String, Value> = BTreeMap::new();
        context.insert("bos_token".into(), Value::from(self.bos_token.as_str()));
        context.insert("eos_token".into(), Value::from(self.eos_token.as_str()));
        if let Some(bytes) = extra_json {
            let extra = parse_json("extra_json", bytes)?;
            if extra.kind() != ValueKind::Map {
                return Err(TemplateError(
                    "extra_json must be a JSON object of template variables".to_owned(),
                ));
            }
            for key in extra
                .try_iter()
                .map_err(|err| TemplateError(err.to_string()))?
            {
                let name = key.as_str().unwrap_or_default().to_owned();
                if RESERVED_VARIABLES.contains(&name.as_str()) {
                    return Err(TemplateError(format!(
                        "extra_json may not set {name:?}; pass it as its own argument"
                    )));
                }
                let value = extra
                    .get_item(&key)
                    .map_err(|err| TemplateError(err.to_string()))?;
                context.insert(name, value);
            }
        }
        context.insert("messages".into(), messages);
        context.insert("tools".into(), tools);
        context.insert("documents".into(), Value::from(()));
        context.insert(
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        );

        let template = self
            .env
            .get_template(&self.name)
            .map_err(|err| TemplateError(err.to_string()))?;
        template
            .render(Value::from(context))
            .map_err(|err| self.render_error(&err))
    }

    fn render_error(&self, err: &minijinja::Error) -> TemplateError {
        let name = &self.name;
        if environment::is_raised_by_template(err) {
            return TemplateError(format!(
                "chat template {name:?} refused the conversation: {}",
                error_detail(err)
            ));
        }
        TemplateError(format!(
            "chat template {name:?} failed on line {}: {}; check the messages and the template",
            err.line().unwrap_or(0),
            error_detail(err),
        ))
    }
}

/// minijinja's detail without its "(in template:line)" decoration, or the kind if none.
fn error_detail(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => detail.to_owned(),
        None => err.kind().to_string(),
    }
}

fn parse_json(what: &str, bytes: &[u8]) -> Result<Value, TemplateError> {
    serde_json::from_slice::<Value>(bytes)
        .map_err(|err| TemplateError(format!("{what} is not valid JSON: {err}")))
}

/// `base` then `extra`, in order, without duplicates; an empty stop string would end every
/// generation at once, so it is refused.
fn merge_stop(base: &[String], extra: &[String]) -> Result<Vec<String>, TemplateError> {
    let mut merged: Vec<String> = Vec::with_capacity(base.len() + extra.len());
    for stop in base.iter().chain(extra) {
        if stop.is_empty() {
            return Err(TemplateError(
                "a stop string is empty; remove it from the stop list".to_owned(),
            ));
        }
        if !merged.contains(stop) {
            merged.push(stop.clone());
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONVERSATION: &[u8] =
        br#"[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]"#;

    #[test]
    fn every_builtin_compiles_and_renders_a_simple_conversation() {
        for family in FAMILY_NAMES {
            let template = ChatTemplate::builtin(family).unwrap();
            let rendered = if family == "gemma" {
                template.render(br#"[{"role":"user","content":"Hi"}]"#, true, None, None)
            } else {
                template.render(CONVERSATION, true, None, None)
            };
            let prompt = rendered.unwrap_or_else(|err| panic!("{family}: {err}"));
            assert!(prompt.contains("Hi"), "{family}: {prompt}");
            assert!(!template.stop().is_empty(), "{family}");
        }
    }

    #[test]
    fn llama3_literal_prompt() {
        let prompt = ChatTemplate::builtin("llama3")
            .unwrap()
            .render(CONVERSATION, true, None, None)
            .unwrap();
        assert_eq!(
            prompt,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\
             Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n\
             Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn mistral_tools_literal_prompt() {
        // Mistral's v3 tool format, as mistral-common tokenizes it: the tools before the last
        // user turn, the call with its 9-character id, the result keyed by that id.
        let messages = br#"[
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "oslo00001",
             "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}}]},
            {"role": "tool", "tool_call_id": "oslo00001", "content": "Snow"},
            {"role": "assistant", "content": "Snow."},
            {"role": "user", "content": "Thanks"}
        ]"#;
        let tools = br#"[{"type": "function", "function": {"name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]"#;
        let prompt = ChatTemplate::builtin("mistral_tools")
            .unwrap()
            .render(messages, true, Some(tools), None)
            .unwrap();
        assert_eq!(
            prompt,
            "<s>[INST] Weather in Oslo?[/INST]\
             [TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \
             \"days\": 2}, \"id\": \"oslo00001\"}]</s>\
             [TOOL_RESULTS] {\"content\": Snow, \"call_id\": \"oslo00001\"}[/TOOL_RESULTS] \
             Snow.</s>\
             [AVAILABLE_TOOLS] [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \
             \"description\": \"Weather for a city.\", \"parameters\": {\"type\": \"object\", \
             \"properties\": {\"city\": {\"type\": \"string\"}}}}}][/AVAILABLE_TOOLS]\
             [INST] Thanks[/INST]"
        );
    }

    #[test]
    fn deepseek_v3_literal_prompt() {
        // DeepSeek V3.1: the call as `NAME<｜tool▁sep｜>` and its arguments as JSON text (the
        // template concatenates them), the result in output markers, and no assistant header
        // after it: the model answers straight after the tool output.
        let messages = br#"[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
             "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Snow"}
        ]"#;
        let prompt = ChatTemplate::builtin("deepseek_v3")
            .unwrap()
            .render(messages, true, None, Some(br#"{"thinking": true}"#))
            .unwrap();
        assert_eq!(
            prompt,
            "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Weather in Oslo?<｜Assistant｜></think>\
             <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>\
             {\"city\":\"Oslo\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>\
             <｜tool▁output▁begin｜>Snow<｜tool▁output▁end｜>"
        );
    }

    #[test]
    fn mistral_tools_refuses_call_ids_not_nine_long() {
        let messages = br#"[{"role": "user", "content": "Hi"},
            {"role": "assistant", "tool_calls": [{"id": "call_abc123", "type": "function",
             "function": {"name": "f", "arguments": {}}}]}]"#;
        let err = ChatTemplate::builtin("mistral_tools")
            .unwrap()
            .render(messages, true, None, None)
            .unwrap_err();
        assert_eq!(
            err.0,
            "chat template \"mistral_tools\" refused the conversation: \
             Tool call IDs should be alphanumeric strings with length 9!"
        );
    }

    #[test]
    fn gemma3_folds_the_system_message_into_the_first_user_turn() {
        let prompt = ChatTemplate::builtin("gemma3")
            .unwrap()
            .render(CONVERSATION, true, None, None)
            .unwrap();
        assert_eq!(
            prompt,
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn unknown_family_lists_the_known_ones() {
        let err = ChatTemplate::builtin("llama2").unwrap_err();
        assert!(
            err.0.contains("llama2") && err.0.contains("llama3, chatml"),
            "{err}"
        );
    }

    #[test]
    fn syntax_error_names_template_and_line() {
        let err =
            ChatTemplate::new("mine", "line one\n{% if x %}never closed", "", "", &[]).unwrap_err();
        assert!(
            err.0.contains("\"mine\"") && err.0.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn raise_exception_message_reaches_the_caller() {
        let gemma = ChatTemplate::builtin("gemma").unwrap();
        let err = gemma.render(CONVERSATION, true, None, None).unwrap_err();
        assert_eq!(
            err.0,
            "chat template \"gemma\" refused the conversation: System role not supported"
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let template = ChatTemplate::builtin("chatml").unwrap();
        type Case<'a> = (&'a [u8], Option<&'a [u8]>, Option<&'a [u8]>, &'a str);
        let cases: [Case; 5] = [
            (b"[", None, None, "messages_json is not valid JSON"),
            (b"{}", None, None, "messages_json must be a JSON array"),
            (
                CONVERSATION,
                Some(b"{}"),
                None,
                "tools_json must be a JSON array",
            ),
            (
                CONVERSATION,
                None,
                Some(b"[]"),
                "extra_json must be a JSON object",
            ),
            (
                CONVERSATION,
                None,
                Some(br#"{"messages":[]}"#),
                "may not set \"messages\"",
            ),
        ];
        for (messages, tools, extra, expected) in cases {
            let err = template.render(messages, true, tools, extra).unwrap_err();
            assert!(err.0.contains(expected), "{err}");
        }
    }

    #[test]
    fn overrides_keep_the_compiled_template() {
        let base = ChatTemplate::builtin("llama3").unwrap();
        let custom = base
            .with_overrides(Some("<B>"), None, &["<|eot_id|>".into(), "END".into()])
            .unwrap();
        assert_eq!(custom.stop(), ["<|eot_id|>", "<|eom_id|>", "END"]);
        assert_eq!(
            (custom.bos_token(), custom.eos_token()),
            ("<B>", "<|eot_id|>")
        );
        assert!(Arc::ptr_eq(&base.env, &custom.env));
        let prompt = custom.render(CONVERSATION, true, None, None).unwrap();
        assert!(prompt.starts_with("<B><|start_header_id|>"), "{prompt}");
        assert!(base.with_overrides(None, None, &[String::new()]).is_err());
    }

    #[test]
    fn extra_variables_reach_the_template() {
        let template = ChatTemplate::new(
            "custom",
            "{{ bos_token }}{{ greeting }} {{ messages | length }} {{ tools }} {{ add_generation_prompt }}",
            "<s>",
            "",
            &[],
        )
        .unwrap();
        let out = template
            .render(
                CONVERSATION,
                false,
                None,
                Some(br#"{"greeting":"hello","bos_token":"<B>"}"#),
            )
            .unwrap();
        assert_eq!(out, "<B>hello 2 None False");
    }
}
