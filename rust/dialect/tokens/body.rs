//! Non-streaming token-dialect bodies (PROTOCOLS.md §1.3, §2.3):
//! DeepInfra `{"results":[{"generated_text"}...], "inference_status", "num_tokens", ...}`,
//! TGI `/generate` `{"generated_text", "details"}`, and TGI's compat route's array of those.
//! Each text goes through the same text stage as a stream; the answer comes out as events for
//! the aggregator.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::logprobs::write_entry;
use super::tool_call_delta;
use super::usage::usage_json;
use super::wire::{finish_reason, DetailsView, ErrorView, ReportedCounts, StatusView, TokenView};
use crate::dialect::reported::ErrorSource;
use crate::dialect::GenerationOptions;
use crate::error::UpstreamError;
use crate::event::{generated_call_id, ChoiceDelta, Event, ToolCallDelta};
use crate::json::for_each_element;
use crate::text::{Released, TextStage};

#[derive(Deserialize)]
struct BodyView<'a> {
    /// DeepInfra: one per sequence (`num_responses`).
    #[serde(borrow, default)]
    results: Option<Vec<ResultView<'a>>>,
    /// TGI.
    #[serde(borrow, default)]
    generated_text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    details: Option<DetailsView<'a>>,
    #[serde(borrow, default)]
    inference_status: Option<StatusView<'a>>,
    #[serde(borrow, default)]
    num_output_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    num_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    num_input_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error_message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error_type: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ResultView<'a> {
    #[serde(borrow, default)]
    generated_text: Option<Cow<'a, str>>,
}

impl<'a> BodyView<'a> {
    fn counts(&self) -> ReportedCounts<'a> {
        ReportedCounts::find(
            self.inference_status.as_ref(),
            [self.num_output_tokens, self.num_tokens],
            self.num_input_tokens,
            self.details.as_ref(),
        )
    }

    fn upstream_error(&self) -> Option<UpstreamError> {
        ErrorView {
            error: self.error,
            error_message: self.error_message,
            error_type: self.error_type,
        }
        .upstream_error(ErrorSource::Body)
    }
}

/// One generated sequence: its text and, from TGI, its details.
struct Answer<'b, 'a> {
    text: &'b str,
    details: Option<&'b DetailsView<'a>>,
}

/// Translates a whole JSON body into events: a delta per choice, their finishes, the usage.
pub fn body_events<F>(
    text: &str,
    options: &GenerationOptions,
    response_id: &str,
    emit: &mut F,
) -> Result<(), UpstreamError>
where
    F: FnMut(Event<'_>),
{
    let bad = |_| UpstreamError::bad_response();
    let bodies: Vec<BodyView<'_>> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(bad)?
    } else {
        vec![serde_json::from_str(text).map_err(bad)?]
    };
    if let Some(error) = bodies.iter().find_map(BodyView::upstream_error) {
        return Err(error);
    }
    let mut answers = Vec::new();
    for body in &bodies {
        match (&body.results, &body.generated_text) {
            (Some(results), _) => answers.extend(results.iter().map(|result| Answer {
                text: result.generated_text.as_deref().unwrap_or(""),
                details: None,
            })),
            (None, Some(text)) => answers.push(Answer {
                text,
                details: body.details.as_ref(),
            }),
            // E.g. a webhook request's `{"inference_status": {"status": "queued"}}`.
            (None, None) => return Err(UpstreamError::bad_response()),
        }
    }
    if answers.is_empty() {
        return Err(UpstreamError::bad_response());
    }
    let reported = reported_counts(&bodies);
    let mut counted = 0;
    let mut called = Vec::with_capacity(answers.len());
    for (choice, answer) in answers.iter().enumerate() {
        let (tokens, calls) = answer_delta(choice as u64, answer, options, response_id, emit)?;
        counted += tokens;
        called.push(calls);
    }
    // Choice 0's reason last: the outcome reports the last one, and a body's is choice 0's.
    for (choice, answer) in answers.iter().enumerate().rev() {
        let native = answer.details.and_then(|d| d.finish_reason.as_deref());
        let reason = match (native, reported.completion, options.max_tokens) {
            (Some(native), _, _) => finish_reason(Some(native)),
            // DeepInfra's counts cover every sequence of the body.
            (None, Some(generated), Some(max)) if generated >= max * answers.len() as u64 => {
                "length"
            }
            _ => "stop",
        };
        let reason = if reason == "stop" && called[choice] {
            "tool_calls"
        } else {
            reason
        };
        emit(Event::Finish {
            choice: choice as u64,
            reason,
        });
    }
    emit(Event::Usage(&usage_json(
        &reported,
        counted,
        options.prompt_tokens,
    )));
    Ok(())
}

/// The counts of one body, or of an array of bodies (completions added up; each must have
/// reported one, else the sum is not reported either).
fn reported_counts<'a>(bodies: &[BodyView<'a>]) -> ReportedCounts<'a> {
    let mut all = bodies.iter().map(BodyView::counts);
    let first = all.next().unwrap_or_default();
    all.fold(first, |sum, next| ReportedCounts {
        completion: sum.completion.zip(next.completion).map(|(a, b)| a + b),
        prompt: sum.prompt.or(next.prompt),
        cost: sum.cost.or(next.cost),
    })
}

/// Emits the delta of one answer; returns how many tokens its details listed (the completion
/// count when none is reported) and whether it made tool calls.
fn answer_delta<F>(
    choice: u64,
    answer: &Answer<'_, '_>,
    options: &GenerationOptions,
    response_id: &str,
    emit: &mut F,
) -> Result<(u64, bool), UpstreamError>
where
    F: FnMut(Event<'_>),
{
    let mut stage = TextStage::new(options.stop.clone(), options.think, options.tools);
    let mut released = Released::default();
    stage.push(answer.text, &mut released);
    stage.finish(&mut released);
    let tokens = answer.details.and_then(|d| d.tokens);
    let mut counted = 0;
    let mut entries = b"[".to_vec();
    if let Some(tokens) = tokens.filter(|t| t.get() != "null") {
        let mut start = 0u64;
        for_each_element(tokens.get().as_bytes(), |_, token: TokenView<'_>| {
            counted += 1;
            if token.special || !options.logprobs {
                return;
            }
            // Tokens from the stop string on are not part of the answer.
            if stage.cut().is_none_or(|cut| start < cut) {
                if entries.len() > 1 {
                    entries.push(b',');
                }
                // `top_tokens` of a body are per position, apart from the tokens: not read.
                let _ = write_entry(&mut entries, &token, None);
            }
            start += token.text.len() as u64;
        })
        .map_err(|_| UpstreamError::bad_response())?;
    }
    entries.push(b']');
    let logprobs = (options.logprobs && tokens.is_some())
        .then(|| std::str::from_utf8(&entries).unwrap_or("[]"));
    // Calls of later choices get ids of their own (each choice counts its calls from 0).
    let id_seed = match choice {
        0 => response_id.to_owned(),
        _ => format!("{response_id}/{choice}"),
    };
    let ids: Vec<String> = (released.calls.iter())
        .map(|call| generated_call_id(&id_seed, call.index))
        .collect();
    let calls: Vec<ToolCallDelta<'_>> = (released.calls.iter().zip(&ids))
        .map(|(call, id)| tool_call_delta(call, id))
        .collect();
    // OpenAI's `content` is null for an answer that is only tool calls.
    let content =
        (!released.content.is_empty() || calls.is_empty()).then_some(released.content.as_str());
    emit(Event::Delta(ChoiceDelta {
        choice,
        content,
        reasoning: (!released.reasoning.is_empty()).then_some(released.reasoning.as_str()),
        tool_calls: &calls,
        logprobs,
        ..Default::default()
    }));
    Ok((counted, !calls.is_empty()))
}
