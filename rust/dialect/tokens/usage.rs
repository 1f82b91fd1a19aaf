//! The OpenAI usage object for a token-event answer: the upstream's counts where it reported
//! them, the gateway's where it did not, and then marked `"estimated":true`.

use super::wire::ReportedCounts;
use crate::dialect::reported;

/// `{"prompt_tokens":P,"completion_tokens":C,"total_tokens":P+C[,"estimated_cost":X][,"estimated":true]}`.
///
/// `counted` (the tokens seen) stands in for an unreported completion count, `prompt_estimate`
/// (or 0) for an unreported prompt count.
pub fn usage_json(
    reported: &ReportedCounts<'_>,
    counted: u64,
    prompt_estimate: Option<u64>,
) -> String {
    let completion = reported.completion.unwrap_or(counted);
    let prompt = reported.prompt.or(prompt_estimate).unwrap_or(0);
    let estimated = reported.completion.is_none() || reported.prompt.is_none();
    reported::usage_json(prompt, completion, estimated, |out| {
        if let Some(cost) = reported.cost {
            out.push_str(",\"estimated_cost\":");
            out.push_str(cost);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_counts_are_not_estimated() {
        let reported = ReportedCounts {
            completion: Some(25),
            prompt: Some(12),
            cost: Some("0.0000436"),
        };
        assert_eq!(
            usage_json(&reported, 3, Some(99)),
            r#"{"prompt_tokens":12,"completion_tokens":25,"total_tokens":37,"estimated_cost":0.0000436}"#
        );
    }

    #[test]
    fn missing_counts_are_filled_in_and_marked() {
        let reported = ReportedCounts {
            completion: Some(4),
            ..Default::default()
        };
        assert_eq!(
            usage_json(&reported, 3, Some(9)),
            r#"{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"estimated":true}"#
        );
        assert_eq!(
            usage_json(&ReportedCounts::default(), 3, None),
            r#"{"prompt_tokens":0,"completion_tokens":3,"total_tokens":3,"estimated":true}"#
        );
    }
}
