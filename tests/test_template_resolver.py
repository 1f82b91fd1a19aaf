"""Resolving a model's chat template: config override, built-in family, Hugging Face lookup.

The hub is a small handler on the project's own server, on 127.0.0.1, that answers like
huggingface.co's ``/{repo}/resolve/main/{file}``; each test states what it publishes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import trio

from sluicegate.config import ConfigError
from sluicegate.errors import GatewayError
from sluicegate.server import Request, Response, serve
from sluicegate.templates import HubSource, TemplateOverride, TemplateResolver
from tests.harness import TrioThread

CONVERSATION = orjson.dumps(
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
)
T = TypeVar("T")
TOKEN = "hf_secret_test_token_123"
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def run(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return trio.run(fn)


def resolve(
    resolver: TemplateResolver, model_id: str, override: TemplateOverride | None = None
) -> Any:
    return run(partial(resolver.resolve, model_id, override))


def gateway_error(
    resolver: TemplateResolver, model_id: str, override: TemplateOverride | None = None
) -> GatewayError:
    with pytest.raises(GatewayError) as raised:
        resolve(resolver, model_id, override)
    return raised.value


# --- the config override ------------------------------------------------------------------------


def test_inline_template_with_its_tokens_and_stop() -> None:
    override = TemplateOverride(
        chat_template="{{ bos_token }}{% for m in messages %}{{ m.content }}|{% endfor %}",
        bos_token="<s>",
        eos_token="</s>",
        stop=("###", "</s>"),
    )
    template = resolve(TemplateResolver(), "acme/model-x", override)
    assert template.name == "inline"
    assert (template.bos_token, template.eos_token) == ("<s>", "</s>")
    assert template.stop == ["</s>", "###"]
    assert template.render(CONVERSATION) == "<s>Be brief.|Hi|"


def test_template_file_relative_to_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "chatml.jinja").write_text(CHATML, encoding="utf-8")
    override = TemplateOverride(
        chat_template="templates/chatml.jinja", eos_token="<|im_end|>", base_dir=str(tmp_path)
    )
    template = resolve(TemplateResolver(), "acme/model-x", override)
    assert template.name == "templates/chatml.jinja"
    assert template.stop == ["<|im_end|>"]
    assert template.render(CONVERSATION).endswith(
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_configured_template_keeps_the_family_tokens_of_its_model(tmp_path: Path) -> None:
    """A tweaked copy of a family's template needs no token settings of its own."""
    path = tmp_path / "llama.jinja"
    path.write_text("{{ bos_token }}{{ messages[-1].content }}", encoding="utf-8")
    override = TemplateOverride(chat_template=str(path), stop=("END",))
    template = resolve(TemplateResolver(), "meta-llama/Llama-3.3-70B-Instruct", override)
    assert (template.bos_token, template.eos_token) == ("<|begin_of_text|>", "<|eot_id|>")
    assert template.stop == ["<|eot_id|>", "<|eom_id|>", "END"]
    assert template.render(CONVERSATION) == "<|begin_of_text|>Hi"


def test_missing_template_file_names_the_path(tmp_path: Path) -> None:
    override = TemplateOverride(chat_template="templates/nope.jinja", base_dir=str(tmp_path))
    error = gateway_error(TemplateResolver(), "acme/model-x", override)
    assert (error.status, error.type, error.code) == (500, "server_error", "chat_template_invalid")
    assert str(tmp_path / "templates" / "nope.jinja") in error.message
    assert "'acme/model-x'" in error.message
    assert '[providers.model_settings."acme/model-x"]' in error.message
    assert "relative path starts at the config file's directory" in error.message


def test_a_directory_is_not_a_template_file(tmp_path: Path) -> None:
    override = TemplateOverride(chat_template=str(tmp_path))
    error = gateway_error(TemplateResolver(), "acme/model-x", override)
    assert "is a directory" in error.message


def test_bad_syntax_names_the_model_and_the_line() -> None:
    override = TemplateOverride(chat_template="{{ bos_token }}\n{% for m in messages %}{{ m }}")
    error = gateway_error(TemplateResolver(), "acme/model-x", override)
    assert (error.status, error.code) == (500, "chat_template_invalid")
    assert "'acme/model-x'" in error.message
    assert "syntax error on line 2" in error.message
    assert '[providers.model_settings."acme/model-x"]' in error.message


def test_an_empty_stop_string_is_a_config_error() -> None:
    error = gateway_error(
        TemplateResolver(), "Qwen/Qwen2.5-7B-Instruct", TemplateOverride(stop=("",))
    )
    assert (error.status, error.code) == (500, "chat_template_invalid")
    assert "stop string is empty" in error.message


def test_configured_checks_without_the_network() -> None:
    resolver = TemplateResolver(hub=HubSource("http://127.0.0.1:9", None, Path("/nonexistent")))
    assert resolver.configured("acme/model-x") is None
    assert resolver.configured("Qwen/Qwen2.5-7B-Instruct").name == "chatml"
    with pytest.raises(GatewayError, match="syntax error"):
        resolver.configured("acme/model-x", TemplateOverride(chat_template="{% if %}"))


# --- built-ins ----------------------------------------------------------------------------------


def test_builtin_with_overridden_tokens_and_extra_stop() -> None:
    override = TemplateOverride(bos_token="", eos_token="<|end|>", stop=("\n\nUser:",))
    template = resolve(TemplateResolver(), "meta-llama/Llama-3.3-70B-Instruct", override)
    assert template.name == "llama3"
    assert (template.bos_token, template.eos_token) == ("", "<|end|>")
    assert template.stop == ["<|eot_id|>", "<|eom_id|>", "<|end|>", "\n\nUser:"]
    assert template.render(CONVERSATION).startswith("<|start_header_id|>system")


def test_builtin_without_override_and_compiled_once() -> None:
    resolver = TemplateResolver()
    first = resolve(resolver, "google/gemma-3-27b-it")
    assert first.name == "gemma3"
    assert first.stop == ["<end_of_turn>"]
    assert resolve(resolver, "google/gemma-3-27b-it", TemplateOverride()) is first
    with_stop = TemplateOverride(stop=("x",))
    assert resolve(resolver, "google/gemma-3-27b-it", with_stop) is not first
    assert resolve(resolver, "google/gemma-3-27b-it", with_stop) is resolve(
        resolver, "google/gemma-3-27b-it", with_stop
    )


def test_no_template_is_a_400_that_names_the_fix() -> None:
    error = gateway_error(TemplateResolver(), "acme/unknown-7b")
    assert (error.status, error.type, error.code, error.param) == (
        400,
        "invalid_request_error",
        "chat_template_missing",
        "model",
    )
    assert "'acme/unknown-7b'" in error.message
    assert '[providers.model_settings."acme/unknown-7b"]' in error.message
    assert "chat_template = " in error.message
    assert "HF_TOKEN" in error.message and "HF_ENDPOINT" in error.message


# --- the Hugging Face lookup --------------------------------------------------------------------


@dataclass
class FakeHub:
    """Answers ``GET /{repo}/resolve/main/{file}`` from ``files``; records every request."""

    files: dict[str, tuple[int, bytes, list[tuple[str, str]]]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def publish(self, repo: str, name: str, body: Any, status: int = 200, **headers: str) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        extra = [(key.replace("_", "-"), value) for key, value in headers.items()]
        self.files[f"/{repo}/resolve/main/{name}"] = (status, data, extra)

    async def __call__(self, request: Request) -> Response:
        self.requests.append((request.path, request.header("authorization")))
        status, body, headers = self.files.get(
            request.path, (404, b"Entry not found", [("x-error-code", "RepoNotFound")])
        )
        return Response(status, body, headers)


@contextmanager
def hub_server(hub: FakeHub) -> Iterator[str]:
    with TrioThread(partial(serve, hub, "127.0.0.1", 0)) as port:
        yield f"http://127.0.0.1:{port}"


def hub_resolver(endpoint: str, cache: Path, token: str | None = TOKEN) -> TemplateResolver:
    return TemplateResolver(hub=HubSource(endpoint, token, cache, timeout=10))


def test_hub_fetch_sends_the_token_and_caches_on_disk(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.publish(
        "acme/chat-7b",
        "tokenizer_config.json",
        {
            "chat_template": CHATML,
            "bos_token": {"content": "<|bos|>", "lstrip": False},
            "eos_token": "<|im_end|>",
        },
    )
    with hub_server(hub) as endpoint:
        template = resolve(hub_resolver(endpoint, tmp_path), "acme/chat-7b")
    assert hub.requests == [("/acme/chat-7b/resolve/main/tokenizer_config.json", f"Bearer {TOKEN}")]
    assert (template.name, template.bos_token, template.eos_token) == (
        "huggingface",
        "<|bos|>",
        "<|im_end|>",
    )
    assert template.stop == ["<|im_end|>"]
    assert "<|im_start|>user\nHi<|im_end|>" in template.render(CONVERSATION)

    # The server is gone: a new resolver (a restart) finds the template on disk.
    cached = list(tmp_path.iterdir())
    assert [path.name for path in cached] == [
        HubSource("x", None, tmp_path).cache_file("acme/chat-7b").name
    ]
    assert TOKEN not in cached[0].read_text(encoding="utf-8")
    override = TemplateOverride(stop=("STOP",))
    again = resolve(hub_resolver(endpoint, tmp_path), "acme/chat-7b", override)
    assert again.stop == ["<|im_end|>", "STOP"]
    assert again.render(CONVERSATION) == template.render(CONVERSATION)


def test_hub_without_token_sends_no_authorization(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.publish("acme/open-7b", "tokenizer_config.json", {"chat_template": CHATML})
    with hub_server(hub) as endpoint:
        template = resolve(hub_resolver(endpoint, tmp_path, token=None), "acme/open-7b")
    assert hub.requests == [("/acme/open-7b/resolve/main/tokenizer_config.json", None)]
    assert (template.bos_token, template.eos_token, template.stop) == ("", "", [])


def test_hub_list_form_takes_the_default_template(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.publish(
        "acme/tools-7b",
        "tokenizer_config.json",
        {
            "chat_template": [
                {"name": "tool_use", "template": "TOOLS"},
                {"name": "default", "template": "DEFAULT {{ messages | length }}"},
            ],
            "eos_token": "</s>",
        },
    )
    with hub_server(hub) as endpoint:
        template = resolve(hub_resolver(endpoint, tmp_path), "acme/tools-7b")
    assert template.render(CONVERSATION) == "DEFAULT 2"


def test_hub_falls_back_to_chat_template_jinja(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.publish("acme/new-7b", "tokenizer_config.json", {"eos_token": "<|im_end|>"})
    hub.publish("acme/new-7b", "chat_template.jinja", CHATML.encode())
    with hub_server(hub) as endpoint:
        template = resolve(hub_resolver(endpoint, tmp_path), "acme/new-7b")
    assert [path for path, _ in hub.requests] == [
        "/acme/new-7b/resolve/main/tokenizer_config.json",
        "/acme/new-7b/resolve/main/chat_template.jinja",
    ]
    assert template.eos_token == "<|im_end|>"
    assert template.render(CONVERSATION).startswith("<|im_start|>system\nBe brief.")


def test_hub_base_model_without_a_template_is_the_400(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.publish("acme/base-7b", "tokenizer_config.json", {"eos_token": "</s>"})
    with hub_server(hub) as endpoint:
        error = gateway_error(hub_resolver(endpoint, tmp_path), "acme/base-7b")
    assert (error.status, error.code) == (400, "chat_template_missing")
    assert "publishes no chat template" in error.message
    assert '[providers.model_settings."acme/base-7b"]' in error.message


def test_hub_gated_model_says_what_to_do_without_the_token(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.publish("google/gemma-7b-it", "tokenizer_config.json", b"gated", status=401)
    with hub_server(hub) as endpoint:
        error = gateway_error(hub_resolver(endpoint, tmp_path), "google/gemma-7b-it")
    assert (error.status, error.type, error.code) == (
        502,
        "upstream_error",
        "chat_template_hub_denied",
    )
    assert "HTTP 401" in error.message
    assert "Accept the model's licence" in error.message
    assert "HF_TOKEN" in error.message
    assert TOKEN not in error.message
    assert not list(tmp_path.iterdir())  # nothing cached


def test_hub_unknown_model_is_the_400_with_the_hubs_answer(tmp_path: Path) -> None:
    hub = FakeHub()
    with hub_server(hub) as endpoint:
        resolver = hub_resolver(endpoint, tmp_path)
        error = gateway_error(resolver, "acme/no-such-model")
        assert (error.status, error.code) == (400, "chat_template_missing")
        assert "HTTP 404" in error.message and "check the model id" in error.message
        gateway_error(resolver, "acme/no-such-model")
    assert len(hub.requests) == 1  # the 404 is remembered


def test_hub_server_error_is_a_502(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.publish("acme/flaky-7b", "tokenizer_config.json", b"oops", status=503)
    with hub_server(hub) as endpoint:
        error = gateway_error(hub_resolver(endpoint, tmp_path), "acme/flaky-7b")
    assert (error.status, error.code) == (502, "chat_template_hub_error")
    assert "HTTP 503" in error.message and "Retry" in error.message


def test_hub_unreachable_is_a_502(tmp_path: Path) -> None:
    with hub_server(FakeHub()) as endpoint:
        pass  # a port that was just closed: nothing listens there now
    error = gateway_error(hub_resolver(endpoint, tmp_path), "acme/chat-7b")
    assert (error.status, error.code) == (502, "chat_template_hub_unreachable")
    assert "HF_ENDPOINT" in error.message


def test_hub_skips_ids_that_are_not_repositories(tmp_path: Path) -> None:
    hub = FakeHub()
    with hub_server(hub) as endpoint:
        error = gateway_error(hub_resolver(endpoint, tmp_path), "acme:latest")
    assert "not a Hugging Face repository id" in error.message
    assert hub.requests == []


def test_hub_template_that_does_not_compile(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.publish("acme/odd-7b", "tokenizer_config.json", {"chat_template": "{% for %}"})
    with hub_server(hub) as endpoint:
        error = gateway_error(hub_resolver(endpoint, tmp_path), "acme/odd-7b")
    assert (error.status, error.code) == (502, "chat_template_invalid")
    assert "'acme/odd-7b'" in error.message and "syntax error on line 1" in error.message


def test_a_corrupt_cache_file_is_fetched_again(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.publish("acme/chat-7b", "tokenizer_config.json", {"chat_template": CHATML})
    HubSource("x", None, tmp_path).cache_file("acme/chat-7b").write_text("{not json")
    with hub_server(hub) as endpoint:
        template = resolve(hub_resolver(endpoint, tmp_path), "acme/chat-7b")
    assert len(hub.requests) == 1
    assert template.render(CONVERSATION).startswith("<|im_start|>system")
    cached = json.loads(HubSource("x", None, tmp_path).cache_file("acme/chat-7b").read_text())
    assert cached["chat_template"] == CHATML


def test_concurrent_resolves_fetch_once(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.publish("acme/chat-7b", "tokenizer_config.json", {"chat_template": CHATML})
    results: list[Any] = []

    async def many(resolver: TemplateResolver) -> None:
        async def one() -> None:
            results.append(await resolver.resolve("acme/chat-7b"))

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(one)

    with hub_server(hub) as endpoint:
        run(partial(many, hub_resolver(endpoint, tmp_path)))
    assert len(hub.requests) == 1
    assert len(results) == 5


def test_concurrent_failures_are_shared(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.publish("acme/gated-7b", "tokenizer_config.json", b"", status=403)
    errors: list[GatewayError] = []

    async def many(resolver: TemplateResolver) -> None:
        async def one() -> None:
            try:
                await resolver.resolve("acme/gated-7b")
            except GatewayError as error:
                errors.append(error)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(one)

    with hub_server(hub) as endpoint:
        run(partial(many, hub_resolver(endpoint, tmp_path)))
    assert len(hub.requests) == 1
    assert [error.code for error in errors] == ["chat_template_hub_denied"] * 3


def test_cache_file_names_are_safe_and_distinct(tmp_path: Path) -> None:
    source = HubSource("https://huggingface.co", None, tmp_path)
    names = {source.cache_file(model).name for model in ("a/b", "a--b", "A/b")}
    assert len(names) == 3
    for name in names:
        assert "/" not in name and name.endswith(".json")
    assert source.cache_file("meta-llama/Llama-3.3-70B-Instruct").name.startswith(
        "meta-llama--Llama-3.3-70B-Instruct-"
    )


# --- switching the lookup on ---------------------------------------------------------------------


def test_from_env_is_off_unless_configured() -> None:
    assert HubSource.from_env({}) is None
    assert HubSource.from_env({"HF_TOKEN": "", "HOME": "/home/u"}) is None


def test_from_env_defaults_and_cache_directory() -> None:
    source = HubSource.from_env({"HF_TOKEN": TOKEN, "HOME": "/home/u"})
    assert source is not None
    assert source.endpoint == "https://huggingface.co"
    assert source.cache_dir == Path("/home/u/.cache/sluicegate/templates")
    xdg = HubSource.from_env({"HF_ENDPOINT": "http://mirror:8080/", "XDG_CACHE_HOME": "/xdg"})
    assert xdg is not None
    assert (xdg.endpoint, xdg.cache_dir) == (
        "http://mirror:8080",
        Path("/xdg/sluicegate/templates"),
    )
    own = HubSource.from_env(
        {"HF_TOKEN": TOKEN, "SLUICEGATE_CACHE_DIR": "/var/cache/sg", "XDG_CACHE_HOME": "/xdg"}
    )
    assert own is not None and own.cache_dir == Path("/var/cache/sg/templates")


def test_from_env_refuses_a_bad_endpoint() -> None:
    with pytest.raises(ConfigError, match="HF_ENDPOINT must be an http"):
        HubSource.from_env({"HF_ENDPOINT": "huggingface.co"})
