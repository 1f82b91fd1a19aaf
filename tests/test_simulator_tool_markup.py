"""The simulator's native text-generation APIs answer ``#sim tool=1`` with each model family's
tool-call markup as plain tokens (DeepInfra ``/v1/inference``, TGI ``/generate(_stream)``).

Prompts are rendered with the gateway's own built-in chat templates, so the tools the simulator
finds in them are where a real request puts them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import orjson
import pytest

from sluicegate._core import ChatTemplate
from sluicegate.simulator import SimulatorState, serve_simulator
from sluicegate.simulator.behaviour import Behaviour
from sluicegate.simulator.script import ToolSpec
from sluicegate.simulator.tgi_family import EOS_TOKEN_ID
from sluicegate.simulator.tool_markup import CannotCallTools, prompt_tools, tool_markup
from tests.harness import TrioThread

WAIT = 10.0
DEEPINFRA = "/v1/inference/meta-llama/Meta-Llama-3.1-8B-Instruct"
TGI_STREAM = "/generate_stream"
TGI_GENERATE = "/generate"
# DeepSeek's special tokens use full-width bars and "▁" (written as escapes: ruff flags them).
BAR, PIECE = "\uff5c", "\u2581"


def ds(words: str) -> str:
    """A DeepSeek marker from its words: "tool sep" → <|tool▁sep|> with full-width bars."""
    return f"<{BAR}{words.replace(' ', PIECE)}{BAR}>"


def tool(name: str, **properties: str) -> dict[str, Any]:
    schema = {name: {"type": kind, "description": name} for name, kind in properties.items()}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name} tool.",
            "parameters": {"type": "object", "properties": schema, "required": list(schema)},
        },
    }


TOOLS = [tool("lookup_stock", ticker="string", days="integer"), tool("get_time", zone="string")]
STOCK_ARGS = '{"ticker": "Paris", "days": 3}'  # the sample values of each declared type
WEATHER_ARGS = '{"city": "Paris"}'  # the fallback tool, when the prompt declares none


def render(family: str, user: str, tools: list[dict[str, Any]] | None = TOOLS) -> str:
    """The prompt the gateway would send for one user message (deepseek and mistral's
    templates leave the tools out)."""
    template = ChatTemplate.builtin(family)
    messages = orjson.dumps([{"role": "user", "content": user}])
    return template.render(messages, tools_json=None if tools is None else orjson.dumps(tools))


def hermes(name: str, arguments: str) -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {arguments}}}\n</tool_call>'


def llama3(name: str, arguments: str) -> str:
    return f'{{"name": "{name}", "parameters": {arguments}}}'


def deepseek_call(name: str, arguments: str) -> str:
    return (
        f"{ds('tool call begin')}function{ds('tool sep')}{name}\n```json\n{arguments}\n```"
        f"{ds('tool call end')}"
    )


def deepseek(*calls: str) -> str:
    return ds("tool calls begin") + "\n".join(calls) + ds("tool calls end")


def mistral(*calls: str) -> str:
    return "[TOOL_CALLS] [" + ", ".join(calls) + "]"


def mistral_call(name: str, arguments: str) -> str:
    return f'{{"name": "{name}", "arguments": {arguments}}}'


# template family → (the markup family it answers in, the markup of one call)
ONE_CALL = {
    "llama3": ("llama3", llama3("lookup_stock", STOCK_ARGS)),
    "chatml": ("hermes", hermes("lookup_stock", STOCK_ARGS)),
    "qwen3": ("hermes", hermes("lookup_stock", STOCK_ARGS)),
    "deepseek": ("deepseek", deepseek(deepseek_call("get_weather", WEATHER_ARGS))),
    "mistral": ("mistral", mistral(mistral_call("get_weather", WEATHER_ARGS))),
}
EOS_OF = {
    "llama3": "<|eot_id|>",
    "chatml": "<|im_end|>",
    "qwen3": "<|im_end|>",
    "deepseek": "</s>",
    "mistral": "</s>",
}


# --- the servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    state = SimulatorState()
    with TrioThread(partial(serve_simulator, "127.0.0.1", 0, state=state)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=WAIT) as client:
        yield client


def events(raw: bytes, prefix: bytes) -> list[dict[str, Any]]:
    frames = [f for f in raw.split(b"\n\n") if f.startswith(prefix)]
    return [json.loads(f.removeprefix(prefix)) for f in frames]


def deepinfra_stream(http: httpx.Client, prompt: str, **extra: object) -> list[dict[str, Any]]:
    answer = http.post(DEEPINFRA, json={"input": prompt, "stream": True, **extra})
    assert answer.status_code == 200, answer.text
    return events(answer.content, b"data: ")


def tgi_stream(http: httpx.Client, prompt: str, **parameters: object) -> list[dict[str, Any]]:
    body = {"inputs": prompt, "parameters": {"details": True, **parameters}}
    answer = http.post(TGI_STREAM, json=body)
    assert answer.status_code == 200, answer.text
    return events(answer.content, b"data:")


STREAMS = {"deepinfra": deepinfra_stream, "tgi": tgi_stream}


def token_texts(stream_events: list[dict[str, Any]]) -> list[str]:
    """The generated tokens' texts, the final EOS token left out."""
    return [e["token"]["text"] for e in stream_events if not e["token"]["special"]]


def assert_ends_with_eos(stream_events: list[dict[str, Any]], markup: str, eos: str) -> None:
    *tokens, final = stream_events
    assert all(e["generated_text"] is None for e in tokens)
    assert not any(e["token"]["special"] for e in tokens)
    assert final["token"] | {"logprob": 0} == {
        "id": EOS_TOKEN_ID,
        "text": eos,
        "logprob": 0,
        "special": True,
    }
    assert final["generated_text"] == markup
    assert final["details"]["finish_reason"] == "eos_token"
    assert final["details"]["generated_tokens"] == len(tokens) + 1


# --- one call per family, streamed and not ---------------------------------------------------


@pytest.mark.parametrize("api", sorted(STREAMS))
@pytest.mark.parametrize("family", sorted(ONE_CALL))
def test_stream_answers_in_the_family_markup(http: httpx.Client, api: str, family: str) -> None:
    got = STREAMS[api](http, render(family, "How is AAPL doing? #sim tool=1"))
    markup = ONE_CALL[family][1]
    assert "".join(token_texts(got)) == markup
    assert_ends_with_eos(got, markup, EOS_OF[family])


@pytest.mark.parametrize("family", sorted(ONE_CALL))
def test_deepinfra_body_holds_the_markup(http: httpx.Client, family: str) -> None:
    prompt = render(family, "How is AAPL doing? #sim tool=1")
    answer = http.post(DEEPINFRA, json={"input": prompt})
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == [{"generated_text": ONE_CALL[family][1]}]


@pytest.mark.parametrize("family", sorted(ONE_CALL))
def test_tgi_generate_holds_the_markup(http: httpx.Client, family: str) -> None:
    prompt = render(family, "How is AAPL doing? #sim tool=1")
    answer = http.post(TGI_GENERATE, json={"inputs": prompt, "parameters": {"details": True}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    markup = ONE_CALL[family][1]
    assert body["generated_text"] == markup
    details = body["details"]
    assert details["finish_reason"] == "eos_token"
    *tokens, eos = details["tokens"]
    assert "".join(t["text"] for t in tokens) == markup
    assert (eos["text"], eos["special"]) == (EOS_OF[family], True)


def test_compat_route_answers_with_prompt_and_markup(http: httpx.Client) -> None:
    prompt = render("qwen3", "How is AAPL doing? #sim tool=1")
    answer = http.post("/", json={"inputs": prompt})
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"generated_text": prompt + ONE_CALL["qwen3"][1]}]


# --- where the markup is split -----------------------------------------------------------------


def test_hermes_splits_mid_tag_mid_key_and_mid_string(http: httpx.Client) -> None:
    got = token_texts(tgi_stream(http, render("chatml", "AAPL? #sim tool=1")))
    assert got == [
        "<tool",
        "_call>",
        "\n",
        '{"na',
        'me": "lookup',
        '_stock"',
        ', "arguments": ',
        '{"tick',
        'er": "',
        'Paris"',
        ', "day',
        's": 3}',
        "}",
        "\n</",
        "tool_call>",
    ]


def test_deepseek_markers_arrive_as_several_tokens(http: httpx.Client) -> None:
    got = token_texts(deepinfra_stream(http, render("deepseek", "Weather? #sim tool=1")))
    assert got[:9] == [
        f"<{BAR}tool",
        f"{PIECE}calls",
        f"{PIECE}begin{BAR}>",
        f"<{BAR}tool",
        f"{PIECE}call",
        f"{PIECE}begin{BAR}>",
        "function",
        f"<{BAR}tool",
        f"{PIECE}sep{BAR}>",
    ]
    assert got[9:] == [
        "get_w",
        "eather",
        "\n```",
        "json\n",
        '{"city',
        '": "Pa',
        'ris"}',
        "\n```",
        f"<{BAR}tool",
        f"{PIECE}call",
        f"{PIECE}end{BAR}>",
        f"<{BAR}tool",
        f"{PIECE}calls",
        f"{PIECE}end{BAR}>",
    ]
    # The markers' UTF-8 bytes: a read of the stream may end inside any of them.
    assert len(BAR.encode()) == len(PIECE.encode()) == 3


@pytest.mark.parametrize("family", sorted(ONE_CALL))
def test_no_token_holds_a_whole_marker_or_name(http: httpx.Client, family: str) -> None:
    got = token_texts(deepinfra_stream(http, render(family, "x #sim tool=1")))
    whole = ("<tool_call>", "</tool_call>", "[TOOL_CALLS]", ds("tool calls begin"), ds("tool sep"))
    assert not any(marker in text for text in got for marker in whole)
    assert not any(name in text for text in got for name in ("lookup_stock", "get_weather"))
    assert any(text.count('"') % 2 for text in got)  # a token ends or starts mid-string


# --- parallel calls, text before, python_tag, malformed --------------------------------------

PARALLEL = {
    "llama3": llama3("lookup_stock", STOCK_ARGS) + "; " + llama3("get_time", '{"zone": "Paris"}'),
    "qwen3": hermes("lookup_stock", STOCK_ARGS) + "\n" + hermes("get_time", '{"zone": "Paris"}'),
    # deepseek's and mistral's templates leave the tools out: the fallback tool, twice
    "deepseek": deepseek(*[deepseek_call("get_weather", WEATHER_ARGS)] * 2),
    "mistral": mistral(*[mistral_call("get_weather", WEATHER_ARGS)] * 2),
}


@pytest.mark.parametrize("api", sorted(STREAMS))
@pytest.mark.parametrize("family", sorted(PARALLEL))
def test_parallel_makes_two_calls(http: httpx.Client, api: str, family: str) -> None:
    got = STREAMS[api](http, render(family, "x #sim tool=1 parallel=1"))
    assert "".join(token_texts(got)) == PARALLEL[family]
    assert_ends_with_eos(got, PARALLEL[family], EOS_OF[family])


def test_parallel_with_one_declared_tool_calls_it_twice(http: httpx.Client) -> None:
    prompt = render("chatml", "x #sim tool=1 parallel=1", tools=TOOLS[:1])
    got = "".join(token_texts(tgi_stream(http, prompt)))
    assert got == hermes("lookup_stock", STOCK_ARGS) + "\n" + hermes("lookup_stock", STOCK_ARGS)


TEXT_THEN_CALL = {
    "qwen3": " The quick\n" + hermes("lookup_stock", STOCK_ARGS),
    "deepseek": " The quick" + deepseek(deepseek_call("get_weather", WEATHER_ARGS)),
    "mistral": " The quick" + mistral(mistral_call("get_weather", WEATHER_ARGS)),
}


@pytest.mark.parametrize("api", sorted(STREAMS))
@pytest.mark.parametrize("family", sorted(TEXT_THEN_CALL))
def test_text_before_the_call(http: httpx.Client, api: str, family: str) -> None:
    got = STREAMS[api](http, render(family, "x #sim tool=1 text_before=1 tokens=2"))
    texts = token_texts(got)
    assert texts[:2] == [" The", " quick"]
    assert "".join(texts) == TEXT_THEN_CALL[family]
    assert_ends_with_eos(got, TEXT_THEN_CALL[family], EOS_OF[family])


def test_llama3_python_tag_is_plain_text_before_the_call(http: httpx.Client) -> None:
    got = deepinfra_stream(http, render("llama3", "x #sim tool=1 python_tag=1"))
    first = got[0]["token"]
    assert (first["text"], first["special"]) == ("<|python_tag|>", False)
    assert "".join(token_texts(got)) == "<|python_tag|>" + llama3("lookup_stock", STOCK_ARGS)


def test_llama3_text_before_needs_python_tag(http: httpx.Client) -> None:
    prompt = render("llama3", "x #sim tool=1 text_before=1 tokens=1")
    refused = http.post(DEEPINFRA, json={"input": prompt, "stream": True})
    assert refused.status_code == 400
    assert "python_tag=1" in refused.json()["error"]
    tagged = render("llama3", "x #sim tool=1 text_before=1 tokens=1 python_tag=1")
    got = "".join(token_texts(deepinfra_stream(http, tagged)))
    assert got == " The<|python_tag|>" + llama3("lookup_stock", STOCK_ARGS)


MALFORMED = {
    "qwen3": '<tool_call>\n{"name": oops',
    "llama3": '{"name": oops',
    "deepseek": f"{ds('tool calls begin')}{ds('tool call begin')}function{ds('tool sep')}"
    '{"name": oops',
    "mistral": '[TOOL_CALLS] [{"name": oops',
}


@pytest.mark.parametrize("api", sorted(STREAMS))
@pytest.mark.parametrize("family", sorted(MALFORMED))
def test_malformed_call_breaks_off_then_eos(http: httpx.Client, api: str, family: str) -> None:
    got = STREAMS[api](http, render(family, "x #sim tool=1 malformed=1"))
    assert "".join(token_texts(got)) == MALFORMED[family]
    assert_ends_with_eos(got, MALFORMED[family], EOS_OF[family])


def test_malformed_body_on_generate(http: httpx.Client) -> None:
    prompt = render("chatml", "x #sim tool=1 malformed=1")
    answer = http.post(TGI_GENERATE, json={"inputs": prompt})
    assert answer.json() == {"generated_text": '<tool_call>\n{"name": oops'}


# --- what else shapes a tool answer -----------------------------------------------------------


def test_token_limit_cuts_the_call(http: httpx.Client) -> None:
    got = tgi_stream(http, render("chatml", "x #sim tool=1"), max_new_tokens=4)
    assert token_texts(got) == ["<tool", "_call>", "\n", '{"na']
    final = got[-1]  # the last real token carries the final fields
    assert final["generated_text"] == '<tool_call>\n{"na'
    assert final["details"]["finish_reason"] == "length"


def test_thinking_comes_before_the_call(http: httpx.Client) -> None:
    got = "".join(token_texts(deepinfra_stream(http, render("qwen3", "x #sim tool=1 think=2"))))
    assert got == "<think>\nLet me</think>\n\n" + hermes("lookup_stock", STOCK_ARGS)


def test_error_after_cuts_the_markup(http: httpx.Client) -> None:
    prompt = render("chatml", "x #sim tool=1 error_after=2")
    raw = http.post(TGI_STREAM, json={"inputs": prompt, "parameters": {}}).content
    got = events(raw, b"data:")
    assert [e["token"]["text"] for e in got[:2]] == ["<tool", "_call>"]
    assert got[2]["error_type"] == "generation"


# --- family detection and the tool taken from the prompt ---------------------------------------


@pytest.mark.parametrize("family", sorted(ONE_CALL))
def test_family_detected_from_the_template(family: str) -> None:
    markup = tool_markup(render(family, "hi"), Behaviour(tool=True))
    assert markup.family == ONE_CALL[family][0]


def test_family_detected_from_bare_markers() -> None:
    detected = {
        "<|start_header_id|>user": "llama3",
        "<|im_start|>user": "hermes",
        f"<{BAR}User{BAR}>hi": "deepseek",
        f"hi<{BAR}Assistant{BAR}>": "deepseek",
        "<s> [INST] hi [/INST]": "mistral",
    }
    for prompt, family in detected.items():
        assert tool_markup(prompt, Behaviour(tool=True)).family == family


@pytest.mark.parametrize("prompt", ["x #sim tool=1", render("gemma", "x #sim tool=1", None)])
def test_no_family_is_a_400_that_names_the_markers(http: httpx.Client, prompt: str) -> None:
    deepinfra = http.post(DEEPINFRA, json={"input": prompt, "stream": True})
    assert deepinfra.status_code == 400
    assert (
        "<|im_start|>" in deepinfra.json()["error"] and "drop tool=1" in deepinfra.json()["error"]
    )
    tgi = http.post(TGI_STREAM, json={"inputs": prompt})
    assert tgi.status_code == 400
    assert "[INST]" in tgi.json()["error"]
    with pytest.raises(CannotCallTools):
        tool_markup(prompt, Behaviour(tool=True))


@pytest.mark.parametrize("family", ["llama3", "chatml", "qwen3"])
def test_tools_read_from_the_rendered_prompt(family: str) -> None:
    assert prompt_tools(render(family, "hi")) == (
        ToolSpec("lookup_stock", (("ticker", "string"), ("days", "integer"))),
        ToolSpec("get_time", (("zone", "string"),)),
    )


def test_tool_reading_skips_what_is_not_a_definition() -> None:
    prompt = (
        'Respond in the format {"name": function name, "parameters": dictionary}.\n'
        '{"name": "past_call", "parameters": {"city": "Oslo"}}\n'  # a call, not a definition
        '{"config": {"tools": [{"name": "bare_fn", "parameters": {"type": "object", '
        '"properties": {"n": {"type": "number"}, "any": {}}}}]}}'
    )
    assert prompt_tools(prompt) == (ToolSpec("bare_fn", (("n", "number"), ("any", "string"))),)


def test_no_declared_tool_calls_the_fallback(http: httpx.Client) -> None:
    prompt = render("chatml", "x #sim tool=1", tools=None)
    assert prompt_tools(prompt) == ()
    got = "".join(token_texts(tgi_stream(http, prompt)))
    assert got == hermes("get_weather", WEATHER_ARGS)
