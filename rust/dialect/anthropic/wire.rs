//! Anthropic's stream events and `Message` body (PROTOCOLS.md §4.3–4.4) as borrowed views: only
//! the members the gateway reads are parsed (`signature`, `citations`, `stop_details`,
//! `service_tier`... are skipped), strings borrow from the event unless they hold escapes, and
//! counts stay raw until read, so an odd value costs a missing count, not the answer.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The data of one stream event of any type. The members of every type sit side by side, each
/// absent unless this type carries it, so an event is parsed once whatever it turns out to be.
#[derive(Deserialize, Default)]
pub struct EventView<'a> {
    /// The event type; it repeats the `event:` line's name.
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// `message_start`: the message so far (empty content, its input usage).
    #[serde(borrow, default)]
    pub message: Option<MessageView<'a>>,
    /// `content_block_*`: the block's position in the message (all block types count).
    #[serde(default)]
    pub index: Option<u64>,
    /// `content_block_start`.
    #[serde(borrow, default)]
    pub content_block: Option<BlockView<'a>>,
    /// `content_block_delta`: the piece; `message_delta`: the stop reason.
    #[serde(borrow, default)]
    pub delta: Option<DeltaView<'a>>,
    /// `message_delta`: cumulative counts.
    #[serde(borrow, default)]
    pub usage: Option<UsageView<'a>>,
    /// `error`: `{"type": "overloaded_error", "message": "Overloaded"}`.
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
}

/// A `Message`: the whole non-streaming answer, or `message_start`'s opening of one. An error
/// body (`{"type": "error", "error": {...}}`) reads as one too, with only `kind` and `error`.
#[derive(Deserialize, Default)]
pub struct MessageView<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub content: Option<Vec<BlockView<'a>>>,
    #[serde(borrow, default)]
    pub stop_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub usage: Option<UsageView<'a>>,
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
}

/// A content block: `text`, `thinking`, `tool_use`, or one the gateway does not show
/// (`redacted_thinking`, `server_tool_use`, `*_tool_result`...).
#[derive(Deserialize, Default)]
pub struct BlockView<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub thinking: Option<Cow<'a, str>>,
    /// `tool_use`.
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// `tool_use`: the arguments as an object (`{}` at a stream's block start).
    #[serde(borrow, default)]
    pub input: Option<&'a RawValue>,
}

/// A `content_block_delta`'s piece (`text_delta`, `thinking_delta`, `input_json_delta`,
/// `signature_delta`, `citations_delta`) or a `message_delta`'s delta (`stop_reason`).
#[derive(Deserialize, Default)]
pub struct DeltaView<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub stop_reason: Option<Cow<'a, str>>,
}

/// `Usage` (message_start, a body) or `MessageDeltaUsage` (message_delta); every count optional.
#[derive(Deserialize, Default)]
pub struct UsageView<'a> {
    #[serde(borrow, default)]
    pub input_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub output_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub cache_creation_input_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub cache_read_input_tokens: Option<&'a RawValue>,
    /// `{"thinking_tokens": N}` on newer answers.
    #[serde(borrow, default)]
    pub output_tokens_details: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct OutputDetailsView<'a> {
    #[serde(borrow, default)]
    thinking_tokens: Option<&'a RawValue>,
}

impl UsageView<'_> {
    /// `output_tokens_details.thinking_tokens`, when it is a count.
    pub fn thinking_tokens(&self) -> Option<u64> {
        let details = self.output_tokens_details?;
        let details: OutputDetailsView<'_> = serde_json::from_str(details.get()).ok()?;
        count(details.thinking_tokens)
    }
}

/// A token count: a non-negative JSON integer; anything else (null, a float, a string) is none.
pub fn count(raw: Option<&RawValue>) -> Option<u64> {
    raw.and_then(|raw| raw.get().parse().ok())
}

/// A string member that is present and not empty.
pub fn non_empty<'b>(text: &'b Option<Cow<'_, str>>) -> Option<&'b str> {
    text.as_deref().filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_view_reads_every_event_type() {
        let start: EventView<'_> = serde_json::from_str(
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":377,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}"#,
        )
        .unwrap();
        let usage = start.message.unwrap().usage.unwrap();
        assert_eq!(count(usage.input_tokens), Some(377));
        assert_eq!(count(usage.cache_read_input_tokens), Some(0));

        let block: EventView<'_> = serde_json::from_str(
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","caller":{"type":"direct"},"input":{}}}"#,
        )
        .unwrap();
        let tool = block.content_block.unwrap();
        assert_eq!((block.index, tool.kind.as_ref()), (Some(1), "tool_use"));
        assert_eq!(tool.input.unwrap().get(), "{}");

        let delta: EventView<'_> = serde_json::from_str(
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\"b"}}  "#,
        )
        .unwrap();
        assert_eq!(delta.delta.unwrap().text.as_deref(), Some("a\"b"));

        let end: EventView<'_> = serde_json::from_str(
            r#"{"type":"message_delta","delta":{"stop_reason":"refusal","stop_sequence":null,"stop_details":{"type":"refusal"}},"usage":{"output_tokens":70,"output_tokens_details":{"thinking_tokens":67}}}"#,
        )
        .unwrap();
        assert_eq!(end.delta.unwrap().stop_reason.as_deref(), Some("refusal"));
        assert_eq!(end.usage.unwrap().thinking_tokens(), Some(67));
    }

    #[test]
    fn odd_counts_are_missing_counts() {
        let usage: UsageView<'_> = serde_json::from_str(
            r#"{"input_tokens":null,"output_tokens":1.5,"cache_read_input_tokens":"3","output_tokens_details":null}"#,
        )
        .unwrap();
        assert_eq!(count(usage.input_tokens), None);
        assert_eq!(count(usage.output_tokens), None);
        assert_eq!(count(usage.cache_read_input_tokens), None);
        assert_eq!(usage.thinking_tokens(), None);
    }
}
