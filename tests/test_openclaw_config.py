"""``sluicegate openclaw-config``: the openclaw.json block, run as users run it (a subprocess),
parsed and checked against what OpenClaw's schema accepts; and deploy/openclaw/ kept in step."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sluicegate.config import Config, ModelAlias, ServerConfig
from sluicegate.openclaw import (
    OpenClawConfigError,
    OpenClawOptions,
    build_openclaw_config,
    gateway_base_url,
    is_openclaw_local,
)
from tests.test_cli import clean_env, run_cli

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "openclaw"

CONFIG = """\
[server]
port = 4321

[[providers]]
name = "box"
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
models = ["Qwen/Qwen3-32B", "plain-model"]

[providers.model_settings."Qwen/Qwen3-32B"]
context_window = 32768

[[models]]
id = "smart"
name = "Smart, with a fallback"
routes = ["box/Qwen/Qwen3-32B", "openai/gpt-4o-mini"]
context_window = 131072
max_tokens = 8192
pricing = { input = 0.23, output = 0.40, cache_read = 0.05, cache_write = 0.5 }

[[models]]
id = "cloud"
routes = ["openai/gpt-4o"]

[[models]]
id = "vision"
name = "Sees pictures"
routes = ["box/plain-model"]
input = ["text", "image"]
max_tokens = 4096

[[models]]
id = "thinker"
routes = ["box/Qwen/Qwen3-32B"]
reasoning = true
"""

ALIASES_ON = ["smart", "vision", "thinker"]  # "cloud" is off: OPENAI_API_KEY is not set
STATIC = ["box/Qwen/Qwen3-32B", "box/plain-model"]
COMPAT = {"supportsUsageInStreaming": True}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "sluicegate.toml"
    path.write_text(CONFIG)
    return path


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"{name} is not JSON (nor portable JSON5)")


def generate(*args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """Run the verb; the document it printed (stdout holds nothing else) and its stderr."""
    result = run_cli("openclaw-config", *args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('{\n  "models": {\n'), "pretty JSON, 2-space indent"
    document = json.loads(result.stdout, parse_constant=_reject_constant)
    return document, result.stderr


def fails(*args: str, env: dict[str, str] | None = None) -> str:
    result = run_cli("openclaw-config", *args, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "sluicegate: error: " in result.stderr
    return result.stderr


def provider_of(document: dict[str, Any], provider_id: str = "sluicegate") -> dict[str, Any]:
    assert set(document) == {"models", "agents"}
    assert document["models"]["mode"] == "merge"
    assert list(document["models"]["providers"]) == [provider_id]
    return document["models"]["providers"][provider_id]


def check_openclaw_schema(provider: dict[str, Any]) -> None:
    """What OpenClaw's ModelProviderSchema / ModelDefinitionSchema (strict) demand of what we
    emit: a custom provider needs baseUrl and models; ids and names are non-empty; windows and
    caps are positive; no key OpenClaw does not know."""
    assert set(provider) <= {"baseUrl", "api", "apiKey", "models"}
    assert provider["api"] == "openai-completions"
    assert provider["baseUrl"].endswith("/v1")
    assert provider["models"]
    model_keys = {
        "id",
        "name",
        "reasoning",
        "input",
        "contextWindow",
        "maxTokens",
        "cost",
        "compat",
    }
    for model in provider["models"]:
        assert set(model) <= model_keys, model
        assert isinstance(model["id"], str) and model["id"].strip()
        assert isinstance(model["name"], str) and model["name"].strip()
        assert isinstance(model["reasoning"], bool)
        assert model["input"] and set(model["input"]) <= {"text", "image", "video", "audio"}
        for key in ("contextWindow", "maxTokens"):
            if key in model:
                assert isinstance(model[key], int) and model[key] > 0
        if "cost" in model:
            assert set(model["cost"]) == {"input", "output", "cacheRead", "cacheWrite"}
            assert all(isinstance(v, float) and v >= 0 for v in model["cost"].values())
        assert model["compat"] == COMPAT
    ids = [m["id"].lower() for m in provider["models"]]
    assert len(ids) == len(set(ids))


# --- the document -----------------------------------------------------------------------------


def test_the_block_lists_aliases_then_static_models_with_what_openclaw_needs(config_file) -> None:
    document, stderr = generate("--config", str(config_file))
    provider = provider_of(document)
    check_openclaw_schema(provider)
    assert provider["baseUrl"] == "http://127.0.0.1:4321/v1"
    assert "apiKey" not in provider  # no client keys and a loopback baseUrl: keyless loopback
    models = {m["id"]: m for m in provider["models"]}
    assert list(models) == [*ALIASES_ON, *STATIC]
    assert models["smart"] == {
        "id": "smart",
        "name": "Smart, with a fallback",
        "reasoning": False,
        "input": ["text"],
        "contextWindow": 131072,
        "maxTokens": 8192,
        "cost": {"input": 0.23, "output": 0.40, "cacheRead": 0.05, "cacheWrite": 0.5},
        "compat": COMPAT,
    }
    # No window of its own and one of its route's is unknown: none claimed; no pricing: no cost.
    assert models["vision"] == {
        "id": "vision",
        "name": "Sees pictures",
        "reasoning": False,
        "input": ["text", "image"],
        "maxTokens": 4096,
        "compat": COMPAT,
    }
    # No name: the id; no window of its own: its only route's configured window.
    assert models["thinker"] == {
        "id": "thinker",
        "name": "thinker",
        "reasoning": True,
        "input": ["text"],
        "contextWindow": 32768,
        "compat": COMPAT,
    }
    assert models["box/Qwen/Qwen3-32B"] == {
        "id": "box/Qwen/Qwen3-32B",
        "name": "box/Qwen/Qwen3-32B",
        "reasoning": False,
        "input": ["text"],
        "contextWindow": 32768,
        "compat": COMPAT,
    }
    assert "contextWindow" not in models["box/plain-model"]
    assert "cost" not in models["box/plain-model"]
    assert document["agents"] == {
        "defaults": {
            "model": {
                "primary": "sluicegate/smart",
                "fallbacks": ["sluicegate/vision", "sluicegate/thinker"],
            }
        }
    }
    # Logs (the config's notices, the summary) go to stderr, the document does not.
    assert "model cloud: off" in stderr
    assert "OpenClaw provider sluicegate: 5 model(s) at http://127.0.0.1:4321/v1" in stderr
    assert '"models"' not in stderr


def test_provider_keys_in_the_environment_turn_alias_routes_on(config_file) -> None:
    document, _ = generate("--config", str(config_file), env=clean_env(OPENAI_API_KEY="sk-x"))
    provider = provider_of(document)
    assert [m["id"] for m in provider["models"]] == ["smart", "cloud", "vision", "thinker", *STATIC]
    assert document["agents"]["defaults"]["model"]["fallbacks"][0] == "sluicegate/cloud"


def test_gateway_keys_make_apikey_an_env_reference_never_the_key(config_file) -> None:
    env = clean_env(SLUICEGATE_API_KEYS="gw-secret-1,gw-secret-2")
    result = run_cli("openclaw-config", "--config", str(config_file), env=env)
    assert result.returncode == 0, result.stderr
    assert "gw-secret" not in result.stdout + result.stderr
    provider = provider_of(json.loads(result.stdout))
    assert provider["apiKey"] == "${SLUICEGATE_API_KEY}"
    assert "SLUICEGATE_API_KEY" in result.stderr  # tells the user what to export for OpenClaw

    document, _ = generate("--config", str(config_file), "--api-key-env", "GW_KEY", env=env)
    assert provider_of(document)["apiKey"] == "${GW_KEY}"


def test_a_remote_base_url_keeps_the_key_reference_and_says_why(config_file) -> None:
    document, stderr = generate(
        "--config", str(config_file), "--base-url", "https://gw.example.com/v1"
    )
    provider = provider_of(document)
    assert provider["baseUrl"] == "https://gw.example.com/v1"
    assert provider["apiKey"] == "${SLUICEGATE_API_KEY}"
    assert "WARNING" in stderr and "loopback" in stderr and "gw.example.com" in stderr


@pytest.mark.parametrize(
    ("base_url", "shown"),
    [
        ("http://localhost:4000/v1/", "http://localhost:4000/v1"),
        ("http://[::1]:4000/v1", "http://[::1]:4000/v1"),
        ("http://gw.internal:4000/v1", "http://gw.internal:4000/v1"),
    ],
)
def test_a_local_base_url_without_gateway_keys_has_no_apikey(config_file, base_url, shown) -> None:
    document, stderr = generate("--config", str(config_file), "--base-url", base_url)
    provider = provider_of(document)
    assert provider["baseUrl"] == shown
    assert "apiKey" not in provider
    assert "WARNING" not in stderr


@pytest.mark.parametrize(
    ("host", "shown"),
    [("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("::1", "[::1]"), ("10.1.2.3", "10.1.2.3")],
)
def test_the_default_base_url_is_the_listen_address(tmp_path, host, shown) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(CONFIG.replace("port = 4321", f'host = "{host}"\nport = 4321'))
    document, _ = generate("--config", str(path), "--provider-id", "gw")
    assert provider_of(document, "gw")["baseUrl"] == f"http://{shown}:4321/v1"
    assert document["agents"]["defaults"]["model"]["primary"] == "gw/smart"


def test_primary_and_fallbacks_can_be_chosen(config_file) -> None:
    document, _ = generate(
        "--config",
        str(config_file),
        "--primary",
        "sluicegate/Vision",  # OpenClaw's spelling, other capitals: the listed id
        "--fallback",
        "box/plain-model",
        "smart",
        "--fallback",
        "vision",  # the primary again: left out
    )
    assert document["agents"]["defaults"]["model"] == {
        "primary": "sluicegate/vision",
        "fallbacks": ["sluicegate/box/plain-model", "sluicegate/smart"],
    }
    document, _ = generate("--config", str(config_file), "--primary", "thinker")
    assert document["agents"]["defaults"]["model"] == {
        "primary": "sluicegate/thinker",
        "fallbacks": ["sluicegate/smart", "sluicegate/vision"],
    }


@pytest.mark.parametrize("flag", ["--primary", "--fallback"])
def test_a_model_that_is_not_listed_is_a_usage_error_naming_the_choices(config_file, flag) -> None:
    # "cloud" is in the file but off (no OPENAI_API_KEY), so it is not a choice.
    stderr = fails("--config", str(config_file), flag, "cloud")
    assert f"{flag} 'cloud'" in stderr
    assert "smart, vision, thinker, box/Qwen/Qwen3-32B, box/plain-model" in stderr


def test_static_models_alone_make_the_primary(tmp_path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(CONFIG.split("[[models]]")[0])
    document, _ = generate("--config", str(path))
    check_openclaw_schema(provider_of(document))
    assert document["agents"]["defaults"]["model"] == {
        "primary": "sluicegate/box/Qwen/Qwen3-32B",
        "fallbacks": [],
    }


def test_no_model_at_all_is_a_usage_error(tmp_path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text("[server]\nport = 4000\n")
    stderr = fails("--config", str(path), env=clean_env(OPENAI_API_KEY="sk-x"))
    assert "[[models]]" in stderr and "models = [" in stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--base-url", "http://127.0.0.1:4000"], "must end in /v1"),
        (["--base-url", "http://127.0.0.1:4000/v1?x=1"], "must end in /v1"),
        (["--base-url", "127.0.0.1:4000/v1"], "http:// or https://"),
        (["--base-url", "http://me:pw@127.0.0.1:4000/v1"], "credentials"),
        (["--provider-id", "My/GW"], "--provider-id"),
        (["--api-key-env", "gw-key"], "upper-case"),
    ],
)
def test_bad_options_are_usage_errors(config_file, args, says) -> None:
    stderr = fails("--config", str(config_file), *args)
    assert says in stderr
    assert "me:pw" not in stderr  # credentials are never echoed back


def test_a_config_error_is_a_usage_error(tmp_path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('[[models]]\nid = "x"\nroutes = ["nobody/m"]\n')
    stderr = fails("--config", str(path))
    assert "nobody" in stderr


def test_help() -> None:
    result = run_cli("openclaw-config", "--help")
    assert result.returncode == 0
    for flag in ("--config", "--provider-id", "--base-url", "--api-key-env", "--primary"):
        assert flag in result.stdout


# --- the pure function --------------------------------------------------------------------------


def _config(**server: Any) -> Config:
    alias = ModelAlias(id="m", routes=("p/x",), name="   ")
    return Config(
        server=ServerConfig(**server), providers=(), notices=(), path=None, models=(alias,)
    )


def test_a_blank_name_falls_back_to_the_id() -> None:
    built = build_openclaw_config(_config(), OpenClawOptions())
    assert built.document["models"]["providers"]["sluicegate"]["models"][0]["name"] == "m"


def test_port_zero_needs_a_base_url() -> None:
    with pytest.raises(OpenClawConfigError, match="--base-url"):
        build_openclaw_config(_config(port=0), OpenClawOptions())
    built = build_openclaw_config(_config(port=0), OpenClawOptions(base_url="http://h:1/v1"))
    assert built.document["models"]["providers"]["sluicegate"]["baseUrl"] == "http://h:1/v1"


def test_gateway_base_url_brackets_ipv6() -> None:
    assert gateway_base_url(ServerConfig(host="fd00::5", port=80)) == "http://[fd00::5]:80/v1"


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("gw.localhost", True),
        ("box.local", True),
        ("gw.internal", True),
        ("GW.Internal", True),
        ("127.0.0.2", False),  # loopback, but not what OpenClaw's keyless rule matches
        ("10.0.0.5", False),
        ("gw.example.com", False),
        ("internal", False),
    ],
)
def test_is_openclaw_local(host: str, local: bool) -> None:
    assert is_openclaw_local(host) is local


# --- deploy/openclaw ----------------------------------------------------------------------------


def _yaml_block(text: str, header: str) -> str:
    """The lines under ``header`` (a line of the YAML file) that are indented deeper than it,
    dedented: a block without a YAML parser (PyYAML is not a dependency)."""
    lines = text.splitlines()
    start = lines.index(header) + 1
    depth = len(header) - len(header.lstrip())
    block: list[str] = []
    for line in lines[start:]:
        if line.strip() and len(line) - len(line.lstrip()) <= depth:
            break
        block.append(line)
    while block and not block[-1].strip():
        block.pop()
    return textwrap.dedent("\n".join(block)) + "\n"


def test_the_kubernetes_example_holds_what_the_verb_prints_for_the_example_config() -> None:
    manifest = (DEPLOY / "openclawinstance.yaml").read_text(encoding="utf-8")
    example = DEPLOY / "sluicegate.toml"
    # The ConfigMap carries the example config as it is.
    assert _yaml_block(manifest, "  sluicegate.toml: |") == example.read_text(encoding="utf-8")

    # spec.config.raw is the verb's output for it, with the Secret's variables set.
    env = clean_env(DEEPINFRA_API_KEY="di-x", OPENAI_API_KEY="sk-x", SLUICEGATE_API_KEYS="gw-x")
    generated, _ = generate("--config", str(example), env=env)
    raw = json.loads(_yaml_block(manifest, "    raw:"))
    assert raw == generated
    provider = provider_of(raw)
    check_openclaw_schema(provider)
    assert provider["baseUrl"] == "http://127.0.0.1:4000/v1"
    assert provider["apiKey"] == "${SLUICEGATE_API_KEY}"
    assert [m["id"] for m in provider["models"]] == [
        "smart",
        "local",
        "vision",
        "vllm/Qwen/Qwen3-32B",
    ]

    # The operator settings the README relies on.
    assert re.search(r"^    mergeMode: merge$", manifest, re.M)
    assert re.search(r'^    forcePaths: \["models\.providers"\]$', manifest, re.M)
    assert "/app/sluicegate.pyz" in manifest and "/etc/sluicegate/sluicegate.toml" in manifest
    assert "image: python:3.11-slim" in manifest
    assert "http://127.0.0.1:4000/healthz" in manifest
    assert re.search(r"name: SLUICEGATE_API_KEY\n\s+valueFrom:\n\s+secretKeyRef:", manifest)


def test_the_readme_names_the_files_it_documents() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for needle in ("openclawinstance.yaml", "sluicegate.toml", "openclaw-config", "forcePaths"):
        assert needle in readme
