"""The provider simulator speaking DeepInfra's native API (PROTOCOLS.md §1), over real sockets."""

from __future__ import annotations

import math

import httpx
import orjson
import pytest

from sluicegate.simulator import token_text
from sluicegate.simulator.behaviour import Behaviour, find_last_directive
from sluicegate.simulator.deepinfra import CATALOG, EOS_TOKEN_ID
from sluicegate.simulator.script import (
    MULTIBYTE_WORDS,
    REASONING_WORDS,
    Ask,
    answer_tokens,
)
from tests.harness import wait_until
from tests.simulator_client import (  # noqa: F401 (fixtures: sim, base, http, state)
    WAIT,
    data_events,
    llama_prompt,
    module_simulator,
    simulator_base,
    simulator_http,
)

LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct"
URL = f"/v1/inference/{LLAMA}"
# DeepSeek's special tokens use full-width bars (written as escapes: ruff flags the character).
DS_USER = "<\uff5cUser\uff5c>"
DS_ASSISTANT = "<\uff5cAssistant\uff5c>"
DS_EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"


def chatml_prompt(user: str) -> str:
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def events(raw: bytes) -> list[dict]:
    """The JSON events of a native stream (comments and ``[DONE]`` left out)."""
    return data_events(raw, b"data: ")


def stream(http: httpx.Client, prompt: str, url: str = URL, **extra: object) -> list[dict]:
    answer = http.post(url, json={"input": prompt, "stream": True, **extra})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/event-stream"
    return events(answer.content)


def texts(stream_events: list[dict]) -> list[str]:
    return [e["token"]["text"] for e in stream_events]


# --- streaming ------------------------------------------------------------------------------


def test_stream_bytes_use_python_json_spacing(http: httpx.Client) -> None:
    prompt = llama_prompt("Hi #sim tokens=2")
    raw = http.post(URL, json={"input": prompt, "stream": True, "seed": 7}).content
    # 4 input tokens (words of the prompt), 3 generated (2 + EOS); Llama 3.1 8B's prices.
    assert raw == (
        b'data: {"token": {"id": 1000, "text": " The", "logprob": -0.05, "special": false}, '
        b'"generated_text": null, "details": null}\n\n'
        b'data: {"token": {"id": 1001, "text": " quick", "logprob": -0.1, "special": false}, '
        b'"generated_text": null, "details": null}\n\n'
        b'data: {"token": {"id": 128009, "text": "<|eot_id|>", "logprob": -0.15, '
        b'"special": true}, "generated_text": " The quick", "details": {"finish_reason": '
        b'"eos_token", "generated_tokens": 3, "input_tokens": 4, "seed": 7}, '
        b'"num_output_tokens": 3, "num_input_tokens": 4, "inference_status": {"status": '
        b'"succeeded", "runtime_ms": 0, "cost": 2.7e-07, "tokens_input": 4, '
        b'"tokens_generated": 3}}\n\n'
    )


def test_default_answer_and_final_event(http: httpx.Client) -> None:
    got = stream(http, llama_prompt("one two three"), url="/v1/inference/some/unlisted-model")
    assert len(got) == 8 + 1
    assert all(e["generated_text"] is None and e["details"] is None for e in got[:-1])
    assert [e["token"]["id"] for e in got[:-1]] == list(range(1000, 1008))
    final = got[-1]
    assert final["token"]["special"] is True and final["token"]["id"] == EOS_TOKEN_ID
    assert final["generated_text"] == token_text(8)
    assert final["details"] == {
        "finish_reason": "eos_token",
        "generated_tokens": 9,
        "input_tokens": 4,  # words of the prompt: template markup sticks to its neighbours
        "seed": None,
    }
    assert (final["num_output_tokens"], final["num_input_tokens"]) == (9, 4)
    status = final["inference_status"]
    assert status["status"] == "succeeded"
    assert (status["tokens_input"], status["tokens_generated"]) == (4, 9)
    assert status["cost"] == pytest.approx((4 * 0.03 + 9 * 0.05) / 1e6)  # the default prices


@pytest.mark.parametrize(
    ("prompt", "eos"),
    [
        (llama_prompt("hi #sim tokens=1"), "<|eot_id|>"),
        (chatml_prompt("hi #sim tokens=1"), "<|im_end|>"),
        ("[INST] hi #sim tokens=1 [/INST]", "</s>"),
    ],
    ids=["llama3", "chatml", "other"],
)
def test_eos_token_follows_the_template_family(http: httpx.Client, prompt: str, eos: str) -> None:
    final = stream(http, prompt)[-1]
    assert final["token"] == {"id": EOS_TOKEN_ID, "text": eos, "logprob": -0.1, "special": True}
    assert final["generated_text"] == " The"


def test_length_finish_rides_on_the_last_real_token(http: httpx.Client) -> None:
    got = stream(http, "x #sim tokens=5", max_new_tokens=2)
    assert texts(got) == [" The", " quick"]
    final = got[-1]
    assert final["token"]["special"] is False
    assert final["generated_text"] == " The quick"
    assert final["details"]["finish_reason"] == "length"
    assert final["details"]["generated_tokens"] == final["num_output_tokens"] == 2


def test_ttft_and_gap_count_into_runtime(http: httpx.Client) -> None:
    final = stream(http, "x #sim tokens=3 ttft_ms=30 gap_ms=10")[-1]
    assert final["inference_status"]["runtime_ms"] == 30 + 2 * 10


def test_think_tags_are_split_across_tokens(http: httpx.Client) -> None:
    got = stream(http, llama_prompt("why? #sim think=3 tokens=2"))
    reasoning = ["<th", "ink>\n", *REASONING_WORDS[:3], "</", "think>\n\n"]
    assert texts(got)[:-1] == [*reasoning, " The", " quick"]
    final = got[-1]
    assert final["generated_text"] == "<think>\nLet me think</think>\n\n The quick"
    assert final["details"]["generated_tokens"] == 2 + 3 + 2 + 2 + 1


def test_think_block_opened_by_the_prompt_sends_no_opening_tag(http: httpx.Client) -> None:
    prompt = DS_USER + "why? #sim think=2 tokens=1" + DS_ASSISTANT + "<think>\n"
    got = stream(http, prompt)
    assert texts(got)[:-1] == ["Let", " me", "</", "think>\n\n", " The"]
    assert got[-1]["generated_text"] == "Let me</think>\n\n The"


def test_max_new_tokens_counts_reasoning_too(http: httpx.Client) -> None:
    got = stream(http, "x #sim think=4 tokens=9", max_new_tokens=3)
    assert "".join(texts(got)) == "<think>\nLet"
    assert got[-1]["details"]["finish_reason"] == "length"


def test_stop_at_writes_the_stop_string_in_two_tokens(http: httpx.Client) -> None:
    prompt = llama_prompt("x #sim stop_at=2 tokens=9")
    got = stream(http, prompt, stop=["<|eot_id|>", "Human:"])
    assert texts(got) == [" The", " quick", "<", "|eot_id|>"]
    final = got[-1]
    assert final["token"]["special"] is False
    assert final["generated_text"] == " The quick<|eot_id|>"
    assert final["details"]["finish_reason"] == "stop_sequence"
    assert final["details"]["generated_tokens"] == 4


def test_stop_at_needs_a_stop_list(http: httpx.Client) -> None:
    answer = http.post(URL, json={"input": "x #sim stop_at=1", "stream": True})
    assert answer.status_code == 400
    message = answer.json()["error"]
    assert "stop" in message and "stop_at" in message


def test_native_usage_0_leaves_counts_out(http: httpx.Client) -> None:
    final = stream(http, "x #sim tokens=2 native_usage=0")[-1]
    assert final == {
        "token": {"id": EOS_TOKEN_ID, "text": "</s>", "logprob": -0.15, "special": True},
        "generated_text": " The quick",
        "details": None,
    }
    body = http.post(URL, json={"input": "x #sim tokens=2 native_usage=0"}).json()
    assert set(body) == {"request_id", "results"}
    assert body["results"] == [{"generated_text": " The quick"}]


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("", {"error_type", "error_message"}),
        ("error_style=deepinfra", {"error_type", "error_message"}),
        ("error_style=tgi", {"error", "error_type"}),
    ],
)
def test_error_after_sends_an_in_stream_error(
    http: httpx.Client, style: str, expected: set[str]
) -> None:
    got = stream(http, f"x #sim tokens=5 error_after=2 {style}")
    assert texts(got[:2]) == [" The", " quick"]
    assert all(e["generated_text"] is None for e in got[:2])
    error = got[-1]
    assert len(got) == 3 and set(error) == expected
    assert "error_after" in (error.get("error_message") or error["error"])
    if style == "error_style=tgi":
        assert error["error_type"] == "generation"
    else:
        assert error["error_type"] == "validation_error"


def test_done_ping_and_crlf(http: httpx.Client) -> None:
    raw = http.post(URL, json={"input": "x #sim tokens=2 done=1", "stream": True}).content
    assert raw.endswith(b"}\n\ndata: [DONE]\n\n")
    raw = http.post(URL, json={"input": "x #sim tokens=2", "stream": True}).content
    assert b"[DONE]" not in raw
    body = {"input": "x #sim tokens=2 ping=1 crlf=1", "stream": True}
    raw = http.post(URL, json=body).content
    assert b"\n" not in raw.replace(b"\r\n", b"")
    blocks = [b for b in raw.split(b"\r\n\r\n") if b]
    assert len(blocks) == 3 + 2
    assert blocks[1::2] == [b": ping", b": ping"]
    assert all(b.startswith(b"data: {") for b in blocks[0::2])


def test_multibyte_words_go_out_as_raw_utf8(http: httpx.Client) -> None:
    raw = http.post(URL, json={"input": "x #sim multibyte=1", "stream": True}).content
    assert " 🦊".encode() in raw and " 東京".encode() in raw
    got = events(raw)
    assert got[-1]["generated_text"] == "".join(MULTIBYTE_WORDS[:8])


def test_garbage_truncate_and_reset(http: httpx.Client, base: str) -> None:
    raw = http.post(URL, json={"input": "x #sim tokens=3 garbage=1", "stream": True}).content
    assert b"data: {this is not JSON\n\n" in raw
    raw = http.post(URL, json={"input": "x #sim tokens=5 truncate_after=2", "stream": True})
    assert texts(events(raw.content)) == [" The", " quick"]
    assert all(e["generated_text"] is None for e in events(raw.content))
    received = b""
    body = {"input": "x #sim tokens=5 reset_after=1", "stream": True}
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{base}{URL}", json=body, timeout=WAIT) as answer,
    ):
        for piece in answer.iter_bytes():
            received += piece
    assert texts(events(received)) == [" The"]


# --- directives in a rendered prompt ----------------------------------------------------------


def test_the_last_directive_of_the_prompt_counts(http: httpx.Client) -> None:
    prompt = (
        "<|im_start|>user\nfirst #sim tokens=1<|im_end|>\n"
        "<|im_start|>assistant\n The<|im_end|>\n"
        "<|im_start|>user\nagain #sim tokens=3<|im_end|>\n<|im_start|>assistant\n"
    )
    assert stream(http, prompt)[-1]["generated_text"] == token_text(3)


def test_header_wins_over_the_prompt(http: httpx.Client) -> None:
    answer = http.post(URL, json={"input": "x #sim tokens=2"}, headers={"x-sim": "tokens=4"})
    assert answer.json()["results"] == [{"generated_text": token_text(4)}]


@pytest.mark.parametrize(
    ("prompt", "directive"),
    [
        ("a #sim tokens=3<|eot_id|><|start_header_id|>assistant", " tokens=3"),
        ("[INST] a #sim tokens=3 gap_ms=1 [/INST]", " tokens=3 gap_ms=1 "),
        (DS_USER + "a #sim tokens=3" + DS_ASSISTANT, " tokens=3"),
        ("<start_of_turn>user\na #sim tokens=3<end_of_turn>\n", " tokens=3"),
        ("#sim tokens=1\n#sim tokens=2\nno directive here", " tokens=2"),
        ("nothing", ""),
    ],
)
def test_find_last_directive_stops_at_template_markup(prompt: str, directive: str) -> None:
    assert find_last_directive(prompt) == directive


@pytest.mark.parametrize(
    ("directive", "word"),
    [("colour=red", "colour"), ("error_style=json", "error_style"), ("think=x", "think")],
)
def test_bad_directive_is_a_deepinfra_400(http: httpx.Client, directive: str, word: str) -> None:
    answer = http.post(URL, json={"input": f"x #sim {directive}"})
    assert answer.status_code == 400
    assert word in answer.json()["error"]


def test_tool_directive_is_refused(http: httpx.Client) -> None:
    answer = http.post(URL, json={"input": "x #sim tool=1", "stream": True})
    assert answer.status_code == 400
    assert "tool" in answer.json()["error"]


def test_answer_tokens_plan() -> None:
    behaviour = Behaviour(tokens=3, think=1, stop_at=1)
    planned, reason = answer_tokens(behaviour, Ask(prompt_tokens=1, stop_sequence="END"))
    assert planned == ["<th", "ink>\n", "Let", "</", "think>\n\n", " The", "E", "ND"]
    assert reason == "stop_sequence"
    # Without a stop string (the OpenAI dialect) stop_at has no effect.
    assert answer_tokens(Behaviour(tokens=2, stop_at=1), Ask(prompt_tokens=1)) == (
        [" The", " quick"],
        "stop",
    )


def test_think_and_multibyte_are_dialect_neutral(http: httpx.Client) -> None:
    """The OpenAI dialect sends them as plain content, as a server without a reasoning parser."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "#sim think=1 multibyte=1"}]}
    content = http.post("/v1/chat/completions", json=chat).json()["choices"][0]["message"]
    assert content["content"] == "<think>\nLet</think>\n\n" + "".join(MULTIBYTE_WORDS[:8])


# --- HTTP errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream_flag", [False, True])
def test_status_429_is_deepinfras_rate_limit(http: httpx.Client, stream_flag: bool) -> None:
    body = {"input": "x #sim status=429 retry_after=3", "stream": stream_flag}
    answer = http.post(URL, json=body)
    assert answer.status_code == 429
    assert answer.json() == {"error": "Rate limited"}
    assert answer.headers["retry-after"] == "3"


@pytest.mark.parametrize("status", [400, 402, 403, 500, 503])
def test_other_statuses_have_a_deep_error_body(http: httpx.Client, status: int) -> None:
    answer = http.post(URL, json={"input": f"x #sim status={status}"})
    assert answer.status_code == status
    assert list(answer.json()) == ["error"]
    assert f"status={status}" in answer.json()["error"]
    assert "retry-after" not in answer.headers


def test_status_422_has_the_fastapi_shape(http: httpx.Client) -> None:
    answer = http.post(URL, json={"input": "x #sim status=422"})
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert set(problem) == {"loc", "msg", "type"}


def problem(*loc: str | int, msg: str, kind: str) -> dict:
    """One entry of FastAPI's 422 ``detail`` list."""
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


NOT_A_STRING = {"msg": "Input should be a valid string", "kind": "string_type"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"stream": True}, [problem("input", msg="Field required", kind="missing")]),
        ({"input": ["a"]}, [problem("input", **NOT_A_STRING)]),
        (
            {"input": "a", "stop": ["ok", 3], "num_responses": 3, "top_p": "high"},
            [
                problem("top_p", msg="Input should be a valid number", kind="float_type"),
                problem("stop", 1, **NOT_A_STRING),
                problem(
                    "num_responses",
                    msg="Input should be less than or equal to 2",
                    kind="less_than_equal",
                ),
            ],
        ),
        (
            {"input": "a", "max_new_tokens": 0, "stream": 1},
            [
                problem("stream", msg="Input should be a valid boolean", kind="bool_type"),
                problem(
                    "max_new_tokens",
                    msg="Input should be greater than or equal to 1",
                    kind="greater_than_equal",
                ),
            ],
        ),
        (
            {"input": "a", "stream": True, "num_responses": 2},
            [
                problem(
                    "num_responses",
                    msg="Value error, num_responses > 1 is not supported with stream=true",
                    kind="value_error",
                )
            ],
        ),
    ],
    ids=["missing", "not-a-string", "several", "range-and-bool", "n-with-stream"],
)
def test_invalid_bodies_are_422(http: httpx.Client, body: dict, detail: list) -> None:
    answer = http.post(URL, json=body)
    assert answer.status_code == 422
    assert answer.json() == {"detail": detail}


def test_bad_json_is_422(http: httpx.Client) -> None:
    answer = http.post(URL, content=b"{nope")
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"
    answer = http.post(URL, content=b"[1]")
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "model_attributes_type"


def test_any_model_works_except_missing_ones(http: httpx.Client) -> None:
    assert http.post("/v1/inference/acme/whatever-7B", json={"input": "x"}).status_code == 200
    assert http.post("/v1/inference/plain", json={"input": "x"}).status_code == 200
    for url in ("/v1/inference/acme/missing-model", "/v1/inference/"):
        answer = http.post(url, json={"input": "x"})
        assert answer.status_code == 404
        assert answer.json() == {"error": "Model not found"}


def test_prefix_routes_need_the_right_method(http: httpx.Client) -> None:
    answer = http.get(URL)
    assert answer.status_code == 404
    assert "POST /v1/inference/" in answer.json()["error"]["message"]


# --- non-streaming ----------------------------------------------------------------------------


def test_non_stream_body(http: httpx.Client) -> None:
    answer = http.post(URL, json={"input": llama_prompt("hi #sim tokens=3"), "seed": 1})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert list(body) == [
        "request_id",
        "inference_status",
        "results",
        "num_tokens",
        "num_input_tokens",
    ]
    assert len(body["request_id"]) == 24 and body["request_id"].isalnum()
    assert body["results"] == [{"generated_text": token_text(3)}]
    assert (body["num_tokens"], body["num_input_tokens"]) == (4, 4)
    assert body["inference_status"] == {
        "status": "succeeded",
        "runtime_ms": 0,
        "cost": pytest.approx((4 * 0.03 + 4 * 0.05) / 1e6),
        "tokens_input": 4,
        "tokens_generated": 4,
    }


def test_non_stream_catalog_prices_and_think_and_stop(http: httpx.Client) -> None:
    prompt = DS_USER + "x #sim think=1 stop_at=1" + DS_ASSISTANT
    body = {"input": prompt, "stop": [DS_EOS]}
    answer = http.post("/v1/inference/deepseek-ai/DeepSeek-R1", json=body).json()
    text = answer["results"][0]["generated_text"]
    assert text == "<think>\nLet</think>\n\n The" + DS_EOS
    assert answer["num_tokens"] == 2 + 1 + 2 + 1 + 2  # no EOS after a stop string
    cost = (answer["num_input_tokens"] * 0.7 + answer["num_tokens"] * 2.4) / 1e6
    assert answer["inference_status"]["cost"] == pytest.approx(cost)


def test_num_responses_2(http: httpx.Client) -> None:
    body = http.post(URL, json={"input": "x #sim tokens=2", "num_responses": 2}).json()
    assert body["results"] == [{"generated_text": " The quick"}] * 2
    assert body["num_tokens"] == body["inference_status"]["tokens_generated"] == 2 * 3


def test_non_stream_failures(http: httpx.Client) -> None:
    answer = http.post(URL, json={"input": "x #sim error_after=1"})
    assert answer.status_code == 500
    assert "error_after" in answer.json()["error"]
    answer = http.post(URL, json={"input": "x #sim truncate_after=1"})
    assert answer.status_code == 200 and answer.content.startswith(b'{"request_id":"')
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(answer.content)
    answer = http.post(URL, json={"input": "x #sim garbage=1"})
    assert answer.status_code == 200 and answer.content.startswith(b"<html>")
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(URL, json={"input": "x #sim reset_after=1"})


# --- embeddings -------------------------------------------------------------------------------


def test_embeddings(http: httpx.Client) -> None:
    url = "/v1/inference/BAAI/bge-base-en-v1.5"
    inputs = ["I like chocolate", "hello"]
    body = http.post(url, json={"inputs": inputs}).json()
    assert list(body) == ["embeddings", "input_tokens", "request_id", "inference_status"]
    vectors = body["embeddings"]
    assert len(vectors) == 2 and all(len(v) == 8 for v in vectors)
    assert vectors[0] != vectors[1]
    assert http.post(url, json={"inputs": inputs}).json()["embeddings"] == vectors
    assert body["input_tokens"] == 3 + 1
    status = body["inference_status"]
    assert (status["status"], status["tokens_input"], status["tokens_generated"]) == (
        "succeeded",
        4,
        0,
    )
    assert status["cost"] == pytest.approx(4 * 0.005 / 1e6)
    normalized = http.post(url, json={"inputs": inputs, "normalize": True}).json()["embeddings"]
    for raw, unit in zip(vectors, normalized, strict=True):
        assert math.fsum(x * x for x in unit) == pytest.approx(1.0)
        norm = math.sqrt(math.fsum(x * x for x in raw))
        assert unit == pytest.approx([x / norm for x in raw])


@pytest.mark.parametrize(
    ("inputs", "loc", "kind"),
    [
        ([], ["body", "inputs"], "too_short"),
        ("one", ["body", "inputs"], "list_type"),
        (["ok", 5], ["body", "inputs", 1], "string_type"),
        (None, ["body", "inputs"], "missing"),
    ],
)
def test_embeddings_bad_inputs_are_422(
    http: httpx.Client, inputs: object, loc: list, kind: str
) -> None:
    answer = http.post("/v1/inference/BAAI/bge-base-en-v1.5", json={"inputs": inputs})
    assert answer.status_code == 422
    problem = answer.json()["detail"][0]
    assert (problem["loc"], problem["type"]) == (loc, kind)


def test_embeddings_status_directive(http: httpx.Client) -> None:
    answer = http.post(
        "/v1/inference/BAAI/bge-base-en-v1.5", json={"inputs": ["a #sim status=503"]}
    )
    assert answer.status_code == 503
    assert "error" in answer.json()


# --- the catalog ------------------------------------------------------------------------------


def test_catalog_without_meta(http: httpx.Client) -> None:
    body = http.get("/v1/openai/models").json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert {LLAMA, "Qwen/Qwen3-Max", "deepseek-ai/DeepSeek-R1", "BAAI/bge-base-en-v1.5"} <= set(ids)
    for model in body["data"]:
        assert model == {
            "id": model["id"],
            "object": "model",
            "created": model["created"],
            "owned_by": "deepinfra",
            "root": model["id"],
            "parent": None,
            "metadata": None,
        }
    assert http.get("/v1/openai/models?filter=other").json() == body


def test_catalog_with_meta(http: httpx.Client) -> None:
    body = http.get("/v1/openai/models", params={"filter": "with_meta"}).json()
    assert len(body["data"]) == len(CATALOG)
    by_id = {m["id"]: m["metadata"] for m in body["data"]}
    assert all(
        set(meta) == {"description", "context_length", "max_tokens", "pricing", "tags"}
        for meta in by_id.values()
    )
    llama = by_id[LLAMA]
    assert llama["pricing"] == {"input_tokens": 0.03, "output_tokens": 0.05}
    assert llama["context_length"] == 131072 and "chat" in llama["tags"]
    assert "cache_read_tokens" in by_id["deepseek-ai/DeepSeek-V3"]["pricing"]
    embeddings = by_id["BAAI/bge-base-en-v1.5"]
    assert embeddings["tags"] == ["embeddings"]
    assert list(embeddings["pricing"]) == ["input_tokens"]


# --- introspection ----------------------------------------------------------------------------


def test_native_requests_are_recorded_and_counted(http: httpx.Client, base: str) -> None:
    before = http.get("/sim/stats").json()
    prompt = llama_prompt("hi #sim tokens=1")
    body = {"input": prompt, "stream": True, "stop": ["<|eot_id|>"], "top_k": 40, "min_p": 0.1}
    http.post(URL, json=body, headers={"authorization": "Bearer di-test"})
    after = http.get("/sim/stats").json()
    assert after["requests"] == before["requests"] + 1
    assert after["completed_streams"] == before["completed_streams"] + 1
    recorded = http.get("/sim/requests").json()["requests"][-1]
    assert (recorded["method"], recorded["path"]) == ("POST", URL)
    assert recorded["body"] == body
    assert recorded["headers"]["authorization"] == "Bearer di-test"

    disconnects = after["client_disconnects"]
    long_answer = {"input": "x #sim tokens=1000 gap_ms=20", "stream": True}
    with httpx.stream("POST", f"{base}{URL}", json=long_answer, timeout=WAIT) as answer:
        assert next(answer.iter_bytes()).startswith(b"data: {")
    assert wait_until(lambda: http.get("/sim/stats").json()["client_disconnects"] > disconnects)
