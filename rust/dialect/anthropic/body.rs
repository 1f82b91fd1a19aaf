//! A non-streaming Anthropic answer (PROTOCOLS.md §4.3, §4.6): a `Message` becomes events for
//! the aggregator, an error body (`{"type": "error", "error": {...}}`) the error.

use super::ending::{finish_reason, upstream_error};
use super::tool_calls::{arguments_json, call_id};
use super::usage::UsageSoFar;
use super::wire::{non_empty, MessageView};
use crate::dialect::reported::ErrorSource;
use crate::error::UpstreamError;
use crate::event::{ChoiceDelta, Event, ToolCallDelta};

/// Translates a whole `Message` body into events: a delta per shown block (text → content,
/// thinking → reasoning, each `tool_use` → one complete call), the finish, the usage.
pub fn body_events<F>(
    text: &str,
    response_id: &str,
    prompt_estimate: Option<u64>,
    emit: &mut F,
) -> Result<(), UpstreamError>
where
    F: FnMut(Event<'_>),
{
    let message: MessageView<'_> =
        serde_json::from_str(text).map_err(|_| UpstreamError::bad_response())?;
    let error = message.error.filter(|raw| raw.get() != "null");
    if message.kind.as_deref() == Some("error") || error.is_some() {
        return Err(upstream_error(error, ErrorSource::Body));
    }
    let Some(blocks) = &message.content else {
        return Err(UpstreamError::bad_response());
    };
    let mut shown_text = false;
    let mut calls = 0;
    for block in blocks {
        match block.kind.as_ref() {
            "text" => {
                shown_text = true;
                emit(Event::Delta(ChoiceDelta {
                    content: Some(block.text.as_deref().unwrap_or("")),
                    ..Default::default()
                }));
            }
            "thinking" => {
                if let Some(thinking) = non_empty(&block.thinking) {
                    emit(Event::Delta(ChoiceDelta {
                        reasoning: Some(thinking),
                        ..Default::default()
                    }));
                }
            }
            "tool_use" => {
                let id = call_id(block.id.as_deref(), response_id, calls);
                let arguments = arguments_json(block.input);
                let call = [ToolCallDelta {
                    index: calls,
                    id: Some(&id),
                    kind: Some("function"),
                    name: Some(block.name.as_deref().unwrap_or("")),
                    arguments: Some(&arguments),
                }];
                calls += 1;
                emit(Event::Delta(ChoiceDelta {
                    tool_calls: &call,
                    ..Default::default()
                }));
            }
            // redacted_thinking (opaque), server tools and their results: nothing to show.
            _ => {}
        }
    }
    if !shown_text && calls == 0 {
        // An answer with nothing to show still has a message: `content: ""`, not null.
        emit(Event::Delta(ChoiceDelta {
            content: Some(""),
            ..Default::default()
        }));
    }
    if let Some(reason) = message.stop_reason.as_deref() {
        emit(Event::Finish {
            choice: 0,
            reason: finish_reason(reason),
        });
    }
    let mut usage = UsageSoFar::default();
    if let Some(reported) = &message.usage {
        usage.take(reported, true);
    }
    emit(Event::Usage(&usage.json(0, prompt_estimate)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Result<Vec<String>, UpstreamError> {
        let mut seen = Vec::new();
        body_events(text, "r", None, &mut |event| {
            seen.push(format!("{event:?}"))
        })?;
        Ok(seen)
    }

    #[test]
    fn text_and_tool_use() {
        let seen = events(
            r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"Hi, I'm Claude."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"location": "Paris"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":377,"output_tokens":65,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"service_tier":"standard"}}"#,
        )
        .unwrap();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen[0].contains("content: Some(\"Hi, I'm Claude.\")"));
        assert!(seen[1].contains("id: Some(\"toolu_1\")"));
        assert!(seen[1].contains("arguments: Some(\"{\\\"location\\\":\\\"Paris\\\"}\")"));
        assert_eq!(seen[2], "Finish { choice: 0, reason: \"tool_calls\" }");
        assert_eq!(
            seen[3],
            r#"Usage("{\"prompt_tokens\":377,\"completion_tokens\":65,\"total_tokens\":442,\"prompt_tokens_details\":{\"cached_tokens\":0}}")"#
        );
    }

    #[test]
    fn nothing_shown_is_empty_content() {
        let seen = events(
            r#"{"type":"message","content":[{"type":"redacted_thinking","data":"x"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":0}}"#,
        )
        .unwrap();
        assert!(seen[0].contains("content: Some(\"\")"), "{seen:?}");
    }

    #[test]
    fn errors_and_garbage() {
        let e = events(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#).unwrap_err();
        assert_eq!(e.code.as_deref(), Some("upstream_overloaded"));
        for bad in [r#"{"type":"message"}"#, "[1]", r#"{"content":5}"#] {
            assert_eq!(
                events(bad).unwrap_err().code.as_deref(),
                Some("upstream_bad_response"),
                "{bad}"
            );
        }
    }
}
