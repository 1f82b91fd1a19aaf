"""The provider simulator speaking TGI's native API (PROTOCOLS.md §2), over real sockets."""

from __future__ import annotations

import httpx
import orjson
import pytest

from sluicegate.simulator import token_text
from sluicegate.simulator.script import REASONING_WORDS
from sluicegate.simulator.tgi import MAX_INPUT_TOKENS, MAX_TOTAL_TOKENS, MODEL_ID
from sluicegate.simulator.tgi_family import EOS_TOKEN_ID
from tests.harness import wait_until
from tests.simulator_client import (  # noqa: F401 (fixtures: sim, base, http, state)
    WAIT,
    data_events,
    llama_prompt,
    module_simulator,
    simulator_base,
    simulator_http,
)

STREAM = "/generate_stream"
GENERATE = "/generate"


def events(raw: bytes) -> list[dict]:
    """The JSON events of a TGI stream (keep-alive comments left out)."""
    return data_events(raw, b"data:")


def stream(http: httpx.Client, inputs: str, url: str = STREAM, **parameters: object) -> list[dict]:
    answer = http.post(url, json={"inputs": inputs, "parameters": parameters})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/event-stream"
    return events(answer.content)


def texts(stream_events: list[dict]) -> list[str]:
    return [e["token"]["text"] for e in stream_events]


def validation_event(message: str) -> bytes:
    body = {"error": f"Input validation error: {message}", "error_type": "validation"}
    return b"data:" + orjson.dumps(body) + b"\n\n"


# --- streaming ------------------------------------------------------------------------------


def test_stream_bytes_are_axum_json_data(http: httpx.Client) -> None:
    answer = http.post(STREAM, json={"inputs": "Hi #sim tokens=2", "parameters": {}})
    assert answer.status_code == 200
    assert answer.content == (
        b'data:{"index":1,"token":{"id":1000,"text":" The","logprob":-0.05,"special":false},'
        b'"generated_text":null,"details":null}\n\n'
        b'data:{"index":2,"token":{"id":1001,"text":" quick","logprob":-0.1,"special":false},'
        b'"generated_text":null,"details":null}\n\n'
        b'data:{"index":3,"token":{"id":128009,"text":"</s>","logprob":-0.15,"special":true},'
        b'"generated_text":" The quick","details":null}\n\n'
    )
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.headers["x-compute-type"] == "gpu+optimized"
    assert answer.headers["x-compute-characters"] == str(len("Hi #sim tokens=2"))
    assert answer.headers["x-accel-buffering"] == "no"
    assert "x-generated-tokens" not in answer.headers  # /generate only


def test_default_answer_without_details(http: httpx.Client) -> None:
    got = stream(http, llama_prompt("one two three"))
    assert [e["index"] for e in got] == list(range(1, 10))
    assert all(e["generated_text"] is None and e["details"] is None for e in got[:-1])
    assert all("top_tokens" not in e for e in got)
    final = got[-1]
    assert final["token"] == {
        "id": EOS_TOKEN_ID,
        "text": "<|eot_id|>",  # the template family's end of turn
        "logprob": -0.1,
        "special": True,
    }
    assert final["generated_text"] == token_text(8)
    assert final["details"] is None


@pytest.mark.parametrize(
    ("parameters", "seed"),
    [
        ({"details": True}, None),  # greedy: no seed
        ({"details": True, "do_sample": True, "seed": 42}, 42),
        ({"details": True, "temperature": 0.7, "seed": 7}, 7),
        ({"details": True, "temperature": 1.0, "seed": 7}, None),  # no warper, no sampling
    ],
)
def test_details_on_the_final_event(http: httpx.Client, parameters: dict, seed: int | None) -> None:
    final = stream(http, "x y #sim tokens=3", **parameters)[-1]
    assert final["details"] == {
        "finish_reason": "eos_token",
        "generated_tokens": 4,
        "seed": seed,
        "input_length": 4,  # one per word of the prompt
    }


def test_a_sampling_answer_without_a_seed_reports_a_repeatable_one(http: httpx.Client) -> None:
    first = stream(http, "x #sim tokens=1", details=True, do_sample=True)[-1]["details"]["seed"]
    again = stream(http, "x #sim tokens=1", details=True, do_sample=True)[-1]["details"]["seed"]
    assert isinstance(first, int) and 0 <= first < 2**64 and first == again


def test_length_finish_rides_on_the_last_real_token(http: httpx.Client) -> None:
    got = stream(http, "x #sim tokens=5", max_new_tokens=2, details=True)
    assert texts(got) == [" The", " quick"]
    final = got[-1]
    assert (final["index"], final["token"]["special"]) == (2, False)
    assert final["generated_text"] == " The quick"
    assert final["details"]["finish_reason"] == "length"
    assert final["details"]["generated_tokens"] == 2


def test_stop_sequence_finish_echoes_the_stop_string(http: httpx.Client) -> None:
    got = stream(http, "x #sim stop_at=2", stop=["END", "Human:"], details=True)
    assert texts(got) == [" The", " quick", "E", "ND"]
    final = got[-1]
    assert final["token"]["special"] is False
    assert final["generated_text"] == " The quickEND"
    assert final["details"]["finish_reason"] == "stop_sequence"
    assert final["details"]["generated_tokens"] == 4


def test_top_n_tokens_adds_top_tokens_to_every_event(http: httpx.Client) -> None:
    got = stream(http, "x #sim tokens=2", top_n_tokens=3)
    for event in got:
        tops = event["top_tokens"]
        assert len(tops) == 3 and tops[0] == event["token"]
        assert [t["logprob"] for t in tops] == sorted((t["logprob"] for t in tops), reverse=True)
    assert list(got[0]) == ["index", "token", "top_tokens", "generated_text", "details"]


def test_return_full_text_prepends_the_prompt(http: httpx.Client) -> None:
    final = stream(http, "Say #sim tokens=2", return_full_text=True)[-1]
    assert final["generated_text"] == "Say #sim tokens=2 The quick"


def test_think_block_is_plain_text(http: httpx.Client) -> None:
    got = stream(http, "why #sim think=2 tokens=1")
    assert texts(got)[:-1] == ["<th", "ink>\n", *REASONING_WORDS[:2], "</", "think>\n\n", " The"]
    assert got[-1]["generated_text"] == "<think>\nLet me</think>\n\n The"


def test_ping_crlf_and_done(http: httpx.Client) -> None:
    body = {"inputs": "x #sim tokens=2 ping=1 crlf=1", "parameters": {}}
    raw = http.post(STREAM, json=body).content
    assert b"\n" not in raw.replace(b"\r\n", b"")
    blocks = [b for b in raw.split(b"\r\n\r\n") if b]
    assert blocks[1::2] == [b":", b":"]  # axum's default keep-alive: an empty comment
    assert all(b.startswith(b"data:{") for b in blocks[0::2])
    assert b"[DONE]" not in raw
    raw = http.post(STREAM, json={"inputs": "x #sim tokens=1 done=1"}).content
    assert raw.endswith(b"}\n\ndata:[DONE]\n\n")  # the HF serverless quirk, on request


def test_error_after_is_a_generation_error_event(http: httpx.Client) -> None:
    raw = http.post(STREAM, json={"inputs": "x #sim tokens=5 error_after=2"}).content
    got = events(raw)
    assert texts(got[:2]) == [" The", " quick"]
    assert got[2] == {
        "error": "Request failed during generation: "
        "simulated upstream error after 2 tokens (#sim error_after)",
        "error_type": "generation",
    }
    assert len(got) == 3


def test_garbage_truncate_and_reset(http: httpx.Client, base: str) -> None:
    raw = http.post(STREAM, json={"inputs": "x #sim tokens=3 garbage=1"}).content
    assert b"data:{this is not JSON\n\n" in raw
    raw = http.post(STREAM, json={"inputs": "x #sim tokens=5 truncate_after=2"}).content
    assert texts(events(raw)) == [" The", " quick"]
    assert all(e["generated_text"] is None for e in events(raw))
    received = b""
    body = {"inputs": "x #sim tokens=5 reset_after=1"}
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{base}{STREAM}", json=body, timeout=WAIT) as answer,
    ):
        for piece in answer.iter_bytes():
            received += piece
    assert texts(events(received)) == [" The"]


# --- validation: TGI's rules and messages -----------------------------------------------------

VALIDATION_RULES = [
    ({"temperature": 0}, "`temperature` must be strictly positive"),
    ({"temperature": -0.5}, "`temperature` must be strictly positive"),
    ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
    ({"top_p": 0}, "`top_p` must be > 0.0 and < 1.0"),
    ({"typical_p": 1}, "`typical_p` must be > 0.0 and < 1.0"),
    ({"top_k": 0}, "`top_k` must be strictly positive"),
    ({"top_k": -3}, "`top_k` must be strictly positive"),
    ({"repetition_penalty": 0}, "`repetition_penalty` must be strictly positive"),
    ({"frequency_penalty": 2.5}, "`frequency_penalty` must be >= -2.0 and <= 2.0"),
    ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences. Given: 5"),
    ({"top_n_tokens": 6}, "`top_n_tokens` must be >= 0 and <= 5. Given: 6"),
    ({"truncate": 0}, "`truncate` must be strictly positive and less than 4095. Given: 0"),
    (
        {"max_new_tokens": MAX_TOTAL_TOKENS},
        "`inputs` tokens + `max_new_tokens` must be <= 4096. "
        "Given: 1 `inputs` tokens and 4096 `max_new_tokens`",
    ),
    # Several problems: the first in TGI's order wins.
    (
        {"top_p": 1.0, "temperature": 0, "max_new_tokens": 0},
        "`temperature` must be strictly positive",
    ),
]


@pytest.mark.parametrize(("parameters", "message"), VALIDATION_RULES)
def test_validation_errors_are_422_on_generate(
    http: httpx.Client, parameters: dict, message: str
) -> None:
    answer = http.post(GENERATE, json={"inputs": "hello", "parameters": parameters})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "error": f"Input validation error: {message}",
        "error_type": "validation",
    }


@pytest.mark.parametrize(("parameters", "message"), VALIDATION_RULES)
def test_validation_errors_are_events_in_a_200_stream(
    http: httpx.Client, parameters: dict, message: str
) -> None:
    answer = http.post(STREAM, json={"inputs": "hello", "parameters": parameters})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.content == validation_event(message)


@pytest.mark.parametrize("url", [GENERATE, STREAM])
def test_empty_inputs_are_refused(http: httpx.Client, url: str) -> None:
    answer = http.post(url, json={"inputs": "", "parameters": {}})
    if url == STREAM:
        assert answer.content == validation_event("`inputs` cannot be empty")
    else:
        assert answer.json()["error"] == "Input validation error: `inputs` cannot be empty"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"best_of": 2}, "`best_of` != 1 is not supported when streaming tokens"),
        ({"best_of": 0}, "`best_of` != 1 is not supported when streaming tokens"),
        (
            {"decoder_input_details": True},
            "`decoder_input_details` == true is not supported when streaming tokens",
        ),
        # The stream-only checks come before the others.
        ({"best_of": 2, "temperature": 0}, "`best_of` != 1 is not supported when streaming tokens"),
    ],
)
def test_stream_only_rules(http: httpx.Client, parameters: dict, message: str) -> None:
    answer = http.post(STREAM, json={"inputs": "x", "parameters": parameters})
    assert (answer.status_code, answer.content) == (200, validation_event(message))


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"best_of": 3, "do_sample": True}, "`best_of` must be > 0 and <= 2. Given: 3"),
        ({"best_of": 2}, "you must use sampling when `best_of` is > 1"),
        ({"best_of": 2, "do_sample": True, "seed": 1}, "`seed` must not be set when `best_of` > 1"),
    ],
)
def test_best_of_rules_on_generate(http: httpx.Client, parameters: dict, message: str) -> None:
    answer = http.post(GENERATE, json={"inputs": "x", "parameters": parameters})
    assert answer.status_code == 422
    assert answer.json()["error"] == f"Input validation error: {message}"


def test_the_limits_the_rules_allow(http: httpx.Client) -> None:
    allowed = {
        "temperature": 0.01,
        "top_p": 0.99,
        "top_k": 1,
        "frequency_penalty": -2.0,
        "stop": ["a", "b", "c", "d"],
        "top_n_tokens": 5,
        "truncate": MAX_INPUT_TOKENS,
        "best_of": 1,
        "max_new_tokens": MAX_TOTAL_TOKENS - 3,  # the prompt is 3 tokens
    }
    answer = http.post(GENERATE, json={"inputs": "x #sim tokens=1", "parameters": allowed})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"max_new_tokens": 20},
            "`inputs` tokens + `max_new_tokens` must be <= 4096. "
            "Given: 4096 `inputs` tokens and 20 `max_new_tokens`",
        ),
        ({}, "`inputs` must have less than 4095 tokens. Given: 4096"),
    ],
)
def test_overflow_is_tgis_context_length_error(
    http: httpx.Client, parameters: dict, message: str
) -> None:
    body = {"inputs": "x #sim overflow=1", "parameters": parameters}
    answer = http.post(GENERATE, json=body)
    assert answer.status_code == 422
    assert answer.json()["error"] == f"Input validation error: {message}"
    assert http.post(STREAM, json=body).content == validation_event(message)


# --- bodies serde cannot read: axum's plain-text rejections --------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"parameters": {}}, "missing field `inputs`"),
        ({"inputs": 5}, "inputs: invalid type: integer `5`, expected a string"),
        (
            {"inputs": "x", "parameters": {"temperature": "hot"}},
            'parameters.temperature: invalid type: string "hot", expected f32',
        ),
        (
            {"inputs": "x", "parameters": {"max_new_tokens": -1}},
            "parameters.max_new_tokens: invalid value: integer `-1`, expected u32",
        ),
        (
            {"inputs": "x", "parameters": {"top_k": 2.5}},
            "parameters.top_k: invalid type: floating point `2.5`, expected i32",
        ),
        (
            {"inputs": "x", "parameters": {"stop": ["ok", 3]}},
            "parameters.stop[1]: invalid type: integer `3`, expected a string",
        ),
        (
            {"inputs": "x", "parameters": {"stop": None}},
            "parameters.stop: invalid type: null, expected a sequence",
        ),
        (
            {"inputs": "x", "parameters": {"details": 1}},
            "parameters.details: invalid type: integer `1`, expected a boolean",
        ),
        (
            {"inputs": "x", "parameters": [1]},
            "parameters: invalid type: sequence, expected struct GenerateParameters",
        ),
        ([1], "invalid type: sequence, expected struct GenerateRequest"),
    ],
    ids=[
        "missing",
        "inputs",
        "float",
        "unsigned",
        "integer",
        "stop-item",
        "stop-null",
        "bool",
        "parameters",
        "body",
    ],
)
def test_unreadable_bodies_are_422_text(http: httpx.Client, body: object, problem: str) -> None:
    for url in (GENERATE, STREAM):
        answer = http.post(url, json=body)
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        assert answer.text == f"Failed to deserialize the JSON body into the target type: {problem}"


def test_nulls_for_optional_parameters_are_fine(http: httpx.Client) -> None:
    parameters = {"temperature": None, "top_p": None, "seed": None, "max_new_tokens": None}
    answer = http.post(GENERATE, json={"inputs": "x #sim tokens=1", "parameters": parameters})
    assert answer.status_code == 200
    assert answer.json() == {"generated_text": " The"}


def test_bad_json_and_missing_content_type(http: httpx.Client) -> None:
    json_type = {"content-type": "application/json"}
    answer = http.post(GENERATE, content=b"{nope", headers=json_type)
    assert answer.status_code == 400
    assert answer.text.startswith("Failed to parse the request body as JSON: ")
    answer = http.post(GENERATE, content=b'{"inputs": "x"}')
    assert answer.status_code == 415
    assert answer.text == "Expected request with `Content-Type: application/json`"


# --- overload and HTTP errors -----------------------------------------------------------------


def test_overloaded(http: httpx.Client) -> None:
    expected = {"error": "Model is overloaded", "error_type": "overloaded"}
    answer = http.post(GENERATE, json={"inputs": "x #sim overloaded=1"})
    assert answer.status_code == 429
    assert answer.json() == expected
    assert "retry-after" not in answer.headers
    answer = http.post(STREAM, json={"inputs": "x #sim overloaded=1"})
    assert answer.status_code == 200
    assert answer.content == b"data:" + orjson.dumps(expected) + b"\n\n"
    answer = http.post("/", json={"inputs": "x #sim overloaded=1"})
    assert (answer.status_code, answer.json()) == (429, expected)


def test_overloaded_comes_before_parameter_validation(http: httpx.Client) -> None:
    body = {"inputs": "x #sim overloaded=1", "parameters": {"temperature": 0}}
    assert http.post(GENERATE, json=body).json()["error_type"] == "overloaded"


@pytest.mark.parametrize("url", [GENERATE, STREAM])
def test_status_429_has_retry_after(http: httpx.Client, url: str) -> None:
    answer = http.post(url, json={"inputs": "x #sim status=429 retry_after=3"})
    assert answer.status_code == 429
    assert answer.json() == {"error": "Model is overloaded", "error_type": "overloaded"}
    assert answer.headers["retry-after"] == "3"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(422, "validation"), (424, "generation"), (500, "incomplete_generation"), (503, "simulated")],
)
def test_other_statuses_have_tgis_body(http: httpx.Client, status: int, error_type: str) -> None:
    answer = http.post(STREAM, json={"inputs": f"x #sim status={status}"})
    assert answer.status_code == status
    body = answer.json()
    assert list(body) == ["error", "error_type"]
    assert body["error_type"] == error_type
    assert f"status={status}" in body["error"]


def test_bad_directive_and_impossible_asks_are_400(http: httpx.Client) -> None:
    answer = http.post(STREAM, json={"inputs": "x #sim colour=red"})
    assert answer.status_code == 400
    assert "colour" in answer.json()["error"]
    answer = http.post(GENERATE, json={"inputs": "x #sim tool=1"})
    assert answer.status_code == 400
    assert "tool" in answer.json()["error"]
    answer = http.post(GENERATE, json={"inputs": "x #sim stop_at=1"})
    assert answer.status_code == 400
    assert "stop" in answer.json()["error"]


def test_header_wins_and_the_last_directive_counts(http: httpx.Client) -> None:
    inputs = llama_prompt("first #sim tokens=1") + llama_prompt("again #sim tokens=3")
    assert http.post(GENERATE, json={"inputs": inputs}).json()["generated_text"] == token_text(3)
    answer = http.post(GENERATE, json={"inputs": inputs}, headers={"x-sim": "tokens=2"})
    assert answer.json()["generated_text"] == token_text(2)


# --- non-streaming ----------------------------------------------------------------------------


def test_non_stream_body_and_headers(http: httpx.Client) -> None:
    answer = http.post(GENERATE, json={"inputs": "Hi there #sim tokens=3 ttft_ms=20 gap_ms=5"})
    assert answer.status_code == 200
    assert answer.content == b'{"generated_text":" The quick brown"}'  # no details by default
    headers = answer.headers
    assert headers["x-compute-type"] == "gpu+optimized"
    assert (headers["x-prompt-tokens"], headers["x-generated-tokens"]) == ("6", "4")
    assert (headers["x-total-time"], headers["x-inference-time"]) == ("30", "30")
    assert headers["x-compute-time"] == "0.03"
    assert headers["x-time-per-token"] == str(30 // 4)
    assert (headers["x-validation-time"], headers["x-queue-time"]) == ("0", "0")
    assert headers["x-compute-characters"] == str(len("Hi there #sim tokens=3 ttft_ms=20 gap_ms=5"))


def test_non_stream_details(http: httpx.Client) -> None:
    body = {"inputs": "Hi #sim tokens=2", "parameters": {"details": True, "seed": 5}}
    got = http.post(GENERATE, json=body).json()
    assert got == {
        "generated_text": " The quick",
        "details": {
            "finish_reason": "eos_token",
            "generated_tokens": 3,
            "seed": None,  # greedy: a seed only counts when sampling
            "prefill": [],
            "tokens": [
                {"id": 1000, "text": " The", "logprob": -0.05, "special": False},
                {"id": 1001, "text": " quick", "logprob": -0.1, "special": False},
                {"id": EOS_TOKEN_ID, "text": "</s>", "logprob": -0.15, "special": True},
            ],
        },
    }


def test_non_stream_length_prefill_top_tokens_and_best_of(http: httpx.Client) -> None:
    parameters = {
        "decoder_input_details": True,  # details without asking for them
        "max_new_tokens": 2,
        "top_n_tokens": 2,
        "best_of": 2,
        "do_sample": True,
    }
    got = http.post(GENERATE, json={"inputs": "a b #sim tokens=5", "parameters": parameters})
    details = got.json()["details"]
    assert details["finish_reason"] == "length"
    assert [t["text"] for t in details["tokens"]] == [" The", " quick"]
    assert [(t["text"], t["logprob"] is None) for t in details["prefill"]] == [
        ("a", True),
        (" b", False),
        (" #sim", False),
        (" tokens=5", False),
    ]
    assert len(details["top_tokens"]) == 2 and all(len(t) == 2 for t in details["top_tokens"])
    (other,) = details["best_of_sequences"]
    assert other["generated_text"] == " The quick" and other["seed"] != details["seed"]
    assert list(details) == [
        "finish_reason",
        "generated_tokens",
        "seed",
        "prefill",
        "tokens",
        "best_of_sequences",
        "top_tokens",
    ]


def test_truncate_shortens_the_input(http: httpx.Client) -> None:
    body = {"inputs": "a b c d #sim tokens=1", "parameters": {"truncate": 2}}
    assert http.post(GENERATE, json=body).headers["x-prompt-tokens"] == "2"


def test_non_stream_failures(http: httpx.Client) -> None:
    answer = http.post(GENERATE, json={"inputs": "x #sim error_after=1"})
    assert answer.status_code == 424
    assert answer.json() == {
        "error": "Request failed during generation: "
        "simulated upstream error after 1 tokens (#sim error_after)",
        "error_type": "generation",
    }
    answer = http.post(GENERATE, json={"inputs": "x #sim truncate_after=1"})
    assert answer.status_code == 200 and answer.content.startswith(b'{"generated_')
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(answer.content)
    answer = http.post(GENERATE, json={"inputs": "x #sim garbage=1"})
    assert answer.status_code == 200 and answer.content.startswith(b"<html>")
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(GENERATE, json={"inputs": "x #sim reset_after=1"})


# --- the compat route, /info, /health --------------------------------------------------------


def test_compat_route_answers_an_array_with_the_full_text(http: httpx.Client) -> None:
    answer = http.post("/", json={"inputs": "Say #sim tokens=2"})
    assert answer.status_code == 200
    assert answer.json() == [{"generated_text": "Say #sim tokens=2 The quick"}]
    assert answer.headers["x-generated-tokens"] == "3"
    body = {"inputs": "Say #sim tokens=2", "parameters": {"return_full_text": False}}
    assert http.post("/", json=body).json() == [{"generated_text": " The quick"}]


def test_compat_route_streams_on_request(http: httpx.Client) -> None:
    answer = http.post("/", json={"inputs": "x #sim tokens=2", "stream": True})
    assert answer.headers["content-type"] == "text/event-stream"
    got = events(answer.content)
    assert [e["index"] for e in got] == [1, 2, 3]
    assert got[-1]["generated_text"] == "x #sim tokens=2 The quick"
    answer = http.post("/", json={"inputs": "x", "stream": "yes"})
    assert answer.status_code == 422
    assert "stream: invalid type" in answer.text
    answer = http.post("/", json={"inputs": "x", "stream": False, "parameters": {"top_p": 1}})
    assert answer.status_code == 422  # errors are not wrapped in an array
    assert answer.json()["error_type"] == "validation"


def test_info_and_health(http: httpx.Client) -> None:
    info = http.get("/info").json()
    assert info["model_id"] == MODEL_ID
    assert (info["max_input_tokens"], info["max_total_tokens"]) == (4095, 4096)
    assert (info["max_stop_sequences"], info["max_best_of"]) == (4, 2)
    assert info["model_pipeline_tag"] == "text-generation"
    assert info["router"] == "text-generation-router"
    health = http.get("/health")
    assert (health.status_code, health.content) == (200, b"")


# --- introspection ----------------------------------------------------------------------------


def test_requests_are_recorded_and_counted(http: httpx.Client, base: str) -> None:
    before = http.get("/sim/stats").json()
    body = {"inputs": "hi #sim tokens=1", "parameters": {"details": True, "stop": ["</s>"]}}
    http.post(STREAM, json=body, headers={"authorization": "Bearer hf-test"})
    after = http.get("/sim/stats").json()
    assert after["requests"] == before["requests"] + 1
    assert after["completed_streams"] == before["completed_streams"] + 1
    recorded = http.get("/sim/requests").json()["requests"][-1]
    assert (recorded["method"], recorded["path"]) == ("POST", STREAM)
    assert recorded["body"] == body
    assert recorded["headers"]["authorization"] == "Bearer hf-test"

    disconnects = after["client_disconnects"]
    long_answer = {"inputs": "x #sim tokens=1000 gap_ms=20"}
    with httpx.stream("POST", f"{base}{STREAM}", json=long_answer, timeout=WAIT) as answer:
        assert next(answer.iter_bytes()).startswith(b"data:{")
    assert wait_until(lambda: http.get("/sim/stats").json()["client_disconnects"] > disconnects)
