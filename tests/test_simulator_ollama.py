"""The provider simulator speaking Ollama's native API (PROTOCOLS.md §3), over real sockets."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterator

import httpx
import orjson
import pytest

from sluicegate.simulator import token_text
from sluicegate.simulator.deepinfra import embedding
from sluicegate.simulator.ollama import (
    EVAL_NS_PER_TOKEN,
    IMAGE_PROMPT_TOKENS,
    LOAD_NS,
    PROMPT_EVAL_NS_PER_TOKEN,
    RUNTIME_ERROR,
    go_json,
    rfc3339_nano,
)
from sluicegate.simulator.script import REASONING_WORDS, WORDS
from tests.conftest import Simulator

WAIT = 10.0
# Go's RFC3339Nano in UTC: fractional seconds without trailing zeros.
CREATED_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z")
CALL_ID = re.compile(r"call_[a-z0-9]{8}")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"utc": {"type": "boolean"}}},
    },
}


@pytest.fixture
def http(simulator: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator.base_url, timeout=WAIT) as client:
        yield client


def chat(content: str, model: str = "llama3.2", **extra: object) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def ndjson(answer: httpx.Response) -> list[dict]:
    """The lines of a streamed answer, after checking the framing every line must have."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-ndjson"
    raw = answer.content
    assert raw.endswith(b"\n") and not raw.startswith(b"data:")
    lines = raw.split(b"\n")[:-1]
    assert all(line == go_json(orjson.loads(line)) for line in lines)  # compact, like Go
    return [orjson.loads(line) for line in lines]


def stream(http: httpx.Client, body: dict, **headers: str) -> list[dict]:
    return ndjson(http.post("/api/chat", json=body, headers=headers))


def metrics(prompt: int, generated: int) -> dict[str, int]:
    prompt_ns, eval_ns = prompt * PROMPT_EVAL_NS_PER_TOKEN, generated * EVAL_NS_PER_TOKEN
    return {
        "total_duration": LOAD_NS + prompt_ns + eval_ns,
        "load_duration": LOAD_NS,
        "prompt_eval_count": prompt,
        "prompt_eval_duration": prompt_ns,
        "eval_count": generated,
        "eval_duration": eval_ns,
    }


def without_time(line: dict) -> dict:
    assert CREATED_AT.fullmatch(line["created_at"]), line["created_at"]
    return {k: v for k, v in line.items() if k != "created_at"}


# --- the stream -----------------------------------------------------------------------------


def test_stream_is_ndjson_with_a_metrics_only_trailer(http: httpx.Client) -> None:
    lines = stream(http, chat("one two #sim tokens=3", stream=True))
    assert [without_time(line) for line in lines] == [
        *(
            {"model": "llama3.2", "message": {"role": "assistant", "content": w}, "done": False}
            for w in WORDS[:3]
        ),
        {
            "model": "llama3.2",
            "message": {"role": "assistant", "content": ""},
            "done_reason": "stop",
            "done": True,
            **metrics(prompt=4, generated=3),  # one prompt token per word of the messages
        },
    ]
    trailer = list(lines[-1])  # Go's field order
    assert trailer[:5] == ["model", "created_at", "message", "done_reason", "done"]
    stamps = [line["created_at"] for line in lines]
    assert len(set(stamps)) == len(stamps)  # every line has its own time


def test_streaming_is_the_default_when_stream_is_omitted(http: httpx.Client) -> None:
    lines = stream(http, chat("hi #sim tokens=2"))
    assert "".join(line["message"]["content"] for line in lines) == token_text(2)
    whole = http.post("/api/chat", json=chat("hi #sim tokens=2", stream=False))
    assert whole.headers["content-type"] == "application/json; charset=utf-8"
    assert whole.json()["message"]["content"] == token_text(2)


def test_num_predict_cuts_the_answer_with_reason_length(http: httpx.Client) -> None:
    lines = stream(http, chat("hi #sim tokens=9", options={"num_predict": 4, "temperature": 0}))
    assert "".join(line["message"]["content"] for line in lines) == token_text(4)
    assert (lines[-1]["done_reason"], lines[-1]["eval_count"]) == ("length", 4)
    unlimited = stream(http, chat("hi #sim tokens=2", options={"num_predict": -1}))
    assert unlimited[-1]["done_reason"] == "stop"


def test_stop_at_ends_on_a_stop_string_that_never_shows(http: httpx.Client) -> None:
    lines = stream(http, chat("hi #sim tokens=9 stop_at=2", options={"stop": ["\n\n"]}))
    assert "".join(line["message"]["content"] for line in lines) == token_text(2)
    assert (lines[-1]["done_reason"], lines[-1]["eval_count"]) == ("stop", 2)


def test_think_sends_thinking_lines_before_the_answer(http: httpx.Client) -> None:
    for think in (True, "high"):
        lines = stream(http, chat("hi #sim tokens=2 think=3", "qwen3:8b", think=think))
        messages = [line["message"] for line in lines]
        assert messages[:3] == [
            {"role": "assistant", "content": "", "thinking": word} for word in REASONING_WORDS[:3]
        ]
        assert [m["content"] for m in messages[3:5]] == list(WORDS[:2])
        assert not any("thinking" in m for m in messages[3:])
        assert lines[-1]["eval_count"] == 5  # thinking is generated too
    for think in (False, None):  # think=N only applies when the request asks to think
        lines = stream(http, chat("hi #sim tokens=2 think=3", "qwen3:8b", think=think))
        assert not any("thinking" in line["message"] for line in lines)
        assert len(lines) == 3


def test_mixed_puts_the_last_thinking_and_the_first_answer_on_one_line(
    http: httpx.Client,
) -> None:
    lines = stream(http, chat("hi #sim tokens=2 think=2 mixed=1", "deepseek-r1:8b", think=True))
    assert [line["message"] for line in lines[:-1]] == [
        {"role": "assistant", "content": "", "thinking": "Let"},
        {"role": "assistant", "content": " The", "thinking": " me"},
        {"role": "assistant", "content": " quick"},
    ]


def test_tool_call_arrives_whole_with_an_object_of_arguments(http: httpx.Client) -> None:
    lines = stream(http, chat("weather? #sim tool=1", tools=[WEATHER_TOOL, TIME_TOOL]))
    assert len(lines) == 2
    call_line, trailer = lines
    assert call_line["done"] is False
    calls = call_line["message"].pop("tool_calls")
    assert call_line["message"] == {"role": "assistant", "content": ""}
    assert len(calls) == 1 and CALL_ID.fullmatch(calls[0].pop("id"))
    assert calls[0] == {
        "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris", "days": 3}}
    }
    assert trailer["done_reason"] == "stop"  # Ollama has no "tool_calls" reason
    assert trailer["message"] == {"role": "assistant", "content": ""}


def test_parallel_sends_two_calls_on_one_line(http: httpx.Client) -> None:
    lines = stream(http, chat("#sim tool=1 parallel=1", tools=[WEATHER_TOOL, TIME_TOOL]))
    calls = lines[0]["message"]["tool_calls"]
    assert [c["function"]["index"] for c in calls] == [0, 1]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert calls[1]["function"]["arguments"] == {"utc": True}
    assert calls[0]["id"] != calls[1]["id"]
    one_tool = stream(http, chat("#sim tool=1 parallel=1", tools=[WEATHER_TOOL]))
    names = [c["function"]["name"] for c in one_tool[0]["message"]["tool_calls"]]
    assert names == ["get_weather", "get_weather"]


def test_tool_directive_needs_tools(http: httpx.Client) -> None:
    answer = http.post("/api/chat", json=chat("#sim tool=1"))
    assert answer.status_code == 400
    assert "tools" in answer.json()["error"]


def test_done_text_no_reason_and_no_counts(http: httpx.Client) -> None:
    lines = stream(http, chat("a b #sim tokens=3 done_text=1"))
    assert len(lines) == 3
    last = without_time(lines[-1])
    assert last == {
        "model": "llama3.2",
        "message": {"role": "assistant", "content": WORDS[2]},
        "done_reason": "stop",
        "done": True,
        **metrics(prompt=5, generated=3),
    }
    bare = stream(http, chat("a b #sim tokens=3 no_reason=1 no_counts=1"))[-1]
    assert bare["done"] is True
    assert not {"done_reason", "prompt_eval_count", "eval_count"} & set(bare)
    assert {"total_duration", "eval_duration"} <= set(bare)


def test_error_after_ends_the_stream_with_an_error_line(http: httpx.Client) -> None:
    answer = http.post("/api/chat", json=chat("#sim tokens=5 error_after=2"))
    assert answer.status_code == 200  # the stream had started
    lines = answer.content.split(b"\n")[:-1]
    assert len(lines) == 3
    assert lines[-1] == b'{"error":"an error was encountered while running the model"}'
    assert [orjson.loads(line)["message"]["content"] for line in lines[:2]] == list(WORDS[:2])


def test_truncate_after_ends_without_a_done_line(http: httpx.Client) -> None:
    lines = stream(http, chat("#sim tokens=5 truncate_after=2"))
    assert [line["done"] for line in lines] == [False, False]


def test_garbage_is_a_line_that_is_not_json(http: httpx.Client) -> None:
    raw = http.post("/api/chat", json=chat("#sim tokens=2 garbage=1")).content
    lines = raw.split(b"\n")[:-1]
    assert orjson.loads(lines[0])["message"]["content"] == WORDS[0]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(lines[1])
    assert orjson.loads(lines[-1])["done"] is True


# --- errors before the answer --------------------------------------------------------------


def test_status_directive_answers_with_ollama_errors(http: httpx.Client) -> None:
    limited = http.post("/api/chat", json=chat("#sim status=429 retry_after=7"))
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert list(limited.json()) == ["error"] and "429" in limited.json()["error"]
    failed = http.post("/api/chat", json=chat("hi"), headers={"x-sim": "status=503"})
    assert failed.status_code == 503 and isinstance(failed.json()["error"], str)
    assert "retry-after" not in failed.headers


def test_request_errors(http: httpx.Client) -> None:
    def error(status: int, **kwargs: object) -> str:
        answer = http.post("/api/chat", **kwargs)  # type: ignore[arg-type]
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert list(body) == ["error"]
        return body["error"]

    assert error(404, json=chat("hi", "missing-model")) == "model 'missing-model' not found"
    assert error(400, json=chat("hi", think=True)) == '"llama3.2" does not support thinking'
    assert "JSON" in error(400, content=b"{not json")
    assert "model is required" in error(400, json={"messages": []})
    assert "integer" in error(400, json=chat("hi", options={"num_predict": "ten"}))
    assert "think" in error(400, json=chat("hi", "qwen3", think="very"))
    assert "arguments must be a JSON object" in error(
        400,
        json={
            "model": "llama3.2",
            "messages": [
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "f", "arguments": '{"a": 1}'}}],
                }
            ],
        },
    )
    assert "unknown key" in error(400, json=chat("#sim nope=1"))
    # think=false is fine for any model; a level counts as asking
    assert http.post("/api/chat", json=chat("hi", think=False)).status_code == 200
    assert http.post("/api/chat", json=chat("hi", "gpt-oss:20b", think="low")).status_code == 200


def test_no_messages_loads_or_unloads_the_model(http: httpx.Client) -> None:
    loaded = http.post("/api/chat", json={"model": "llama3.2", "messages": []}).json()
    assert (loaded["done"], loaded["done_reason"]) == (True, "load")
    unloaded = http.post("/api/chat", json={"model": "llama3.2", "keep_alive": 0}).json()
    assert unloaded["done_reason"] == "unload"


# --- the non-streamed answer ---------------------------------------------------------------


def test_non_stream_body_holds_the_whole_message(http: httpx.Client) -> None:
    body = chat("a b #sim tokens=3 think=2", "qwen3:8b", stream=False, think=True)
    answer = http.post("/api/chat", json=body)
    assert answer.status_code == 200
    assert without_time(answer.json()) == {
        "model": "qwen3:8b",
        "message": {"role": "assistant", "content": token_text(3), "thinking": "Let me"},
        "done_reason": "stop",
        "done": True,
        **metrics(prompt=5, generated=5),
    }
    tool = http.post(
        "/api/chat", json=chat("#sim tool=1 parallel=1", stream=False, tools=[WEATHER_TOOL])
    ).json()
    assert [c["function"]["index"] for c in tool["message"]["tool_calls"]] == [0, 1]
    assert (tool["message"]["content"], tool["done_reason"]) == ("", "stop")


def test_non_stream_failures(http: httpx.Client) -> None:
    failed = http.post("/api/chat", json=chat("#sim error_after=1", stream=False))
    assert (failed.status_code, failed.json()) == (500, {"error": RUNTIME_ERROR})
    cut = http.post("/api/chat", json=chat("#sim truncate_after=1", stream=False))
    assert cut.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(cut.content)


# --- images and recording ------------------------------------------------------------------


def test_images_count_in_the_prompt_and_must_be_base64(http: httpx.Client) -> None:
    image = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()
    message = {"role": "user", "content": "what is this", "images": [image, image]}
    body = {"model": "llava:7b", "messages": [message], "stream": False}
    answer = http.post("/api/chat", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["prompt_eval_count"] == 3 + 2 * IMAGE_PROMPT_TOKENS
    message["images"] = ["data:image/png;base64," + image]
    bad = http.post("/api/chat", json=body)
    assert bad.status_code == 400
    assert "base64" in bad.json()["error"]


def test_the_request_is_recorded(http: httpx.Client, simulator: Simulator) -> None:
    body = chat("recorded 7f3e #sim tokens=1", options={"seed": 42})
    stream(http, body)
    seen = [r for r in simulator.state.recent if r["path"] == "/api/chat" and r["body"] == body]
    assert seen and seen[-1]["method"] == "POST"


# --- the catalog ---------------------------------------------------------------------------


def test_tags_lists_local_models(http: httpx.Client) -> None:
    answer = http.get("/api/tags")
    assert answer.status_code == 200
    models = {m["name"]: m for m in answer.json()["models"]}
    assert {"llama3.2:latest", "qwen3:8b", "llava:7b", "all-minilm:latest"} <= set(models)
    llama = models["llama3.2:latest"]
    assert list(llama) == ["name", "model", "modified_at", "size", "digest", "details"]
    assert re.fullmatch(r"[0-9a-f]{64}", llama["digest"])
    assert llama["details"] == {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
    }


def test_show_describes_a_model(http: httpx.Client) -> None:
    qwen = http.post("/api/show", json={"model": "qwen3:8b"}).json()
    assert qwen["model_info"]["general.architecture"] == "qwen3"
    assert qwen["model_info"]["qwen3.context_length"] == 40960
    assert set(qwen["capabilities"]) == {"completion", "tools", "thinking"}
    assert "<|im_start|>" in qwen["template"] and isinstance(qwen["parameters"], str)
    assert qwen["details"]["family"] == "qwen3"
    llava = http.post("/api/show", json={"model": "llava:7b"}).json()
    assert "vision" in llava["capabilities"]
    llama = http.post("/api/show", json={"model": "llama3.2"}).json()  # no tag means :latest
    assert llama["model_info"]["llama.context_length"] == 131072
    missing = http.post("/api/show", json={"model": "nothere:1b"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'nothere:1b' not found"})


def test_version(http: httpx.Client) -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", http.get("/api/version").json()["version"])


# --- embeddings ----------------------------------------------------------------------------


def test_embed_returns_unit_vectors(http: httpx.Client) -> None:
    answer = http.post("/api/embed", json={"model": "all-minilm", "input": ["one two", "three"]})
    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == [
        "model",
        "embeddings",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
    ]
    assert (body["model"], body["prompt_eval_count"]) == ("all-minilm", 3)
    for text, vector in zip(["one two", "three"], body["embeddings"], strict=True):
        assert vector == pytest.approx(embedding(text, True), abs=1e-6)  # float32 of the same
        assert math.fsum(x * x for x in vector) == pytest.approx(1.0, abs=1e-5)
    single = http.post("/api/embed", json={"model": "all-minilm", "input": "three"}).json()
    assert single["embeddings"] == [body["embeddings"][1]]


def test_embed_dimensions_truncate_and_renormalise(http: httpx.Client) -> None:
    body = {"model": "all-minilm", "input": "three", "dimensions": 3}
    vector = http.post("/api/embed", json=body).json()["embeddings"][0]
    assert len(vector) == 3
    assert math.fsum(x * x for x in vector) == pytest.approx(1.0, abs=1e-5)
    head = embedding("three", True)[:3]
    norm = math.sqrt(sum(x * x for x in head))
    assert vector == pytest.approx([x / norm for x in head], abs=1e-6)


def test_embed_errors(http: httpx.Client) -> None:
    for body in (
        {"model": "all-minilm", "input": 3},
        {"model": "all-minilm", "input": ["ok", 4]},
        {"model": "all-minilm", "input": "x", "dimensions": 0},
        {"input": "x"},
    ):
        answer = http.post("/api/embed", json=body)
        assert answer.status_code == 400, body
        assert isinstance(answer.json()["error"], str)
    missing = http.post("/api/embed", json={"model": "missing-embedder", "input": "x"})
    assert missing.status_code == 404
    long = {"model": "all-minilm", "input": "word " * 600, "truncate": False}
    assert http.post("/api/embed", json=long).status_code == 400
    empty = http.post("/api/embed", json={"model": "all-minilm", "input": []}).json()
    assert empty["embeddings"] == []


# --- Go's wire habits ----------------------------------------------------------------------


def test_go_json_escapes_html_characters() -> None:
    assert go_json({"a": "<b> & \u2028"}) == b'{"a":"\\u003cb\\u003e \\u0026 \\u2028"}'


def test_rfc3339_nano_drops_trailing_zeros() -> None:
    assert rfc3339_nano(1_691_164_339_385_406_455) == "2023-08-04T15:52:19.385406455Z"
    assert rfc3339_nano(1_691_164_339_500_000_000) == "2023-08-04T15:52:19.5Z"
    assert rfc3339_nano(1_691_164_339_000_000_000) == "2023-08-04T15:52:19Z"
