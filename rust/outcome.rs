//! What a response turned out to be, as the gateway needs it for accounting and fallback.

use crate::error::UpstreamError;

#[derive(Debug, Default)]
pub struct Outcome {
    /// The upstream's last non-null usage object, as its exact JSON text (so `cached_tokens: 0`
    /// stays 0, `9.24e-05` stays as written, and absent fields stay absent). When it reported
    /// none, the dialect's estimate, marked `"estimated":true`, once the answer ended.
    pub usage: Option<String>,
    /// The last non-null finish reason any choice reported.
    pub finish_reason: Option<String>,
    /// Whether any non-empty content, reasoning, refusal or tool call went to the client.
    pub content_emitted: bool,
    /// The error the response ended with.
    pub error: Option<UpstreamError>,
}

impl Outcome {
    pub fn set_usage(&mut self, usage_json: &str) {
        // Reuse the buffer: with continuous usage stats every chunk may carry usage.
        let usage = self.usage.get_or_insert_with(String::new);
        usage.clear();
        usage.push_str(usage_json);
    }

    pub fn set_finish_reason(&mut self, reason: &str) {
        let slot = self.finish_reason.get_or_insert_with(String::new);
        slot.clear();
        slot.push_str(reason);
    }
}
