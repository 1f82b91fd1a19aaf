"""Configuration: the TOML file, ${ENV} interpolation, providers from the environment.

Pure unit tests: every case writes a file under tmp_path and passes an explicit ``env``, so the
machine's own environment never leaks in. Error messages are part of the interface: each
validation test checks that the message names the key, the line and the fix.
"""

from __future__ import annotations

import os
import pathlib
import re

import pytest

from sluicegate.config import (
    ENV_PROVIDERS,
    KNOWN_KINDS,
    Config,
    ConfigError,
    ProviderConfig,
    ServerConfig,
    Timeouts,
    load_config,
)
from sluicegate.config.locate import SourceLines

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "config.md"

SPEC_EXAMPLE = """\
[server]
host = "127.0.0.1"
port = 4000
api_keys = ["${SLUICEGATE_KEY}"]
max_body_bytes = 16777216

[[providers]]
name = "vllm-box"
kind = "openai"
base_url = "http://10.0.0.5:8000/v1"
api_key = "${VLLM_KEY}"            # or api_keys = ["...", "..."]
models = ["Qwen/Qwen3-32B"]
headers = { "X-Team" = "agents" }
[providers.timeouts]
connect = 5
first_byte = 60
"""

MINIMAL_PROVIDER = '[[providers]]\nname = "box"\nkind = "openai"\nbase_url = "http://h:8000/v1"\n'


def write(tmp_path: pathlib.Path, text: str, name: str = "config.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_text(tmp_path: pathlib.Path, text: str, **env: str) -> Config:
    return load_config(write(tmp_path, text), env)


def error_for(tmp_path: pathlib.Path, text: str, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, **env)
    return str(info.value)


def names(config: Config) -> list[str]:
    return [p.name for p in config.providers]


# --- environment only ---------------------------------------------------------------------------

KEYED = [
    ("openai", "OPENAI_API_KEY", "https://api.openai.com/v1"),
    ("deepseek", "DEEPSEEK_API_KEY", "https://api.deepseek.com/v1"),
    ("nvidia", "NVIDIA_API_KEY", "https://integrate.api.nvidia.com/v1"),
    ("openrouter", "OPENROUTER_API_KEY", "https://openrouter.ai/api/v1"),
]


@pytest.mark.parametrize(("name", "var", "url"), KEYED)
def test_env_provider_is_on_when_its_key_is_set(name: str, var: str, url: str) -> None:
    config = load_config(None, {var: "sk-1"})
    assert config.providers == (
        ProviderConfig(
            name=name, kind="openai", base_url=url, api_keys=("sk-1",), source=f"env:{var}"
        ),
    )
    assert config.path is None
    assert config.server == ServerConfig()
    assert f"{name}: off ({var} is not set)" not in config.notices


def test_env_provider_table_is_the_documented_one() -> None:
    assert [(r.name, r.key_var, r.default_base_url) for r in ENV_PROVIDERS] == [
        *KEYED,
        ("vllm", "VLLM_API_KEY", None),
        ("deepinfra", "DEEPINFRA_API_KEY", "https://api.deepinfra.com"),
        ("tgi", "TGI_API_KEY", None),
        ("ollama", "OLLAMA_API_KEY", None),
        ("anthropic", "ANTHROPIC_API_KEY", "https://api.anthropic.com"),
    ]
    assert all(r.kind in KNOWN_KINDS for r in ENV_PROVIDERS)


def test_no_env_means_every_env_provider_is_off_with_one_notice_each() -> None:
    config = load_config(None, {})
    assert config.providers == ()
    assert config.notices == (
        "openai: off (OPENAI_API_KEY is not set)",
        "deepseek: off (DEEPSEEK_API_KEY is not set)",
        "nvidia: off (NVIDIA_API_KEY is not set)",
        "openrouter: off (OPENROUTER_API_KEY is not set)",
        "vllm: off (VLLM_BASE_URL is not set)",
        "deepinfra: off (DEEPINFRA_API_KEY or DEEPINFRA_TOKEN is not set)",
        "tgi: off (TGI_BASE_URL is not set)",
        "ollama: off (OLLAMA_BASE_URL or OLLAMA_HOST is not set)",
        "anthropic: off (ANTHROPIC_API_KEY is not set)",
    )


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({"OLLAMA_BASE_URL": "http://box:11434"}, "http://box:11434"),
        ({"OLLAMA_HOST": "0.0.0.0"}, "http://0.0.0.0:11434"),
        ({"OLLAMA_HOST": "box:12000", "OLLAMA_API_KEY": "ok"}, "http://box:12000"),
        ({"OLLAMA_HOST": "x", "OLLAMA_BASE_URL": "https://cloud.example"}, "https://cloud.example"),
    ],
)
def test_ollama_from_its_base_url_or_its_own_host_variable(env: dict, url: str) -> None:
    (provider,) = load_config(None, env).providers
    assert (provider.name, provider.kind, provider.base_url) == ("ollama", "ollama", url)
    assert provider.api_keys == ((env["OLLAMA_API_KEY"],) if "OLLAMA_API_KEY" in env else ())


@pytest.mark.parametrize("var", ["DEEPINFRA_API_KEY", "DEEPINFRA_TOKEN"])
def test_deepinfra_registers_from_either_key_variable(var: str) -> None:
    (provider,) = load_config(None, {var: "di-key"}).providers
    assert (provider.name, provider.kind, provider.base_url) == (
        "deepinfra",
        "deepinfra",
        "https://api.deepinfra.com",
    )
    assert provider.api_keys == ("di-key",)
    assert provider.source == f"env:{var}"


def test_deepinfra_api_key_wins_over_token_and_base_url_is_the_server_root() -> None:
    env = {
        "DEEPINFRA_API_KEY": "a",
        "DEEPINFRA_TOKEN": "b",
        "DEEPINFRA_BASE_URL": "http://127.0.0.1:9/v1/openai",
    }
    config = load_config(None, env)
    (provider,) = config.providers
    assert provider.api_keys == ("a",)
    assert provider.base_url == "http://127.0.0.1:9/v1/openai"
    (notice,) = [n for n in config.notices if n.startswith("deepinfra:")]
    assert "ends in /v1/openai" in notice and "server root" in notice


def test_empty_key_variable_counts_as_unset() -> None:
    config = load_config(None, {"DEEPSEEK_API_KEY": "", "NVIDIA_API_KEY": " , ,"})
    assert config.providers == ()
    assert "deepseek: off (DEEPSEEK_API_KEY is not set)" in config.notices
    assert "nvidia: off (NVIDIA_API_KEY is not set)" in config.notices


def test_comma_separated_keys_become_several_keys() -> None:
    config = load_config(None, {"OPENAI_API_KEY": "sk-a, sk-b,,sk-a ,sk-c"})
    assert config.providers[0].api_keys == ("sk-a", "sk-b", "sk-c")


def test_base_url_variable_overrides_the_default_and_loses_its_trailing_slash() -> None:
    env = {"OPENROUTER_API_KEY": "k", "OPENROUTER_BASE_URL": "http://127.0.0.1:9000/v1/"}
    (provider,) = load_config(None, env).providers
    assert provider.base_url == "http://127.0.0.1:9000/v1"


def test_base_url_variable_without_v1_is_a_notice_not_an_error() -> None:
    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9000"}
    config = load_config(None, env)
    assert config.providers[0].base_url == "http://127.0.0.1:9000"
    (notice,) = [n for n in config.notices if n.startswith("openai:")]
    assert "does not end in /v1" in notice and "OPENAI_BASE_URL" in notice


def test_bad_base_url_variable_names_the_variable() -> None:
    env = {"NVIDIA_API_KEY": "k", "NVIDIA_BASE_URL": "integrate.api.nvidia.com/v1"}
    with pytest.raises(ConfigError, match=r"NVIDIA_BASE_URL .*http\(s\) URL.*unset it"):
        load_config(None, env)


def test_base_url_variable_of_an_off_provider_is_not_checked() -> None:
    config = load_config(None, {"DEEPSEEK_BASE_URL": "not a url"})
    assert config.providers == ()


def test_vllm_is_on_by_base_url_alone() -> None:
    config = load_config(None, {"VLLM_BASE_URL": "http://10.0.0.5:8000/v1"})
    assert config.providers == (
        ProviderConfig(
            name="vllm",
            kind="openai",
            base_url="http://10.0.0.5:8000/v1",
            api_keys=(),
            source="env:VLLM_BASE_URL",
        ),
    )


def test_vllm_key_is_optional_and_used_when_set() -> None:
    env = {"VLLM_BASE_URL": "http://h:8000/v1", "VLLM_API_KEY": "tok"}
    assert load_config(None, env).providers[0].api_keys == ("tok",)
    off = load_config(None, {"VLLM_API_KEY": "tok"})
    assert off.providers == ()
    assert "vllm: off (VLLM_BASE_URL is not set)" in off.notices


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for row in ENV_PROVIDERS:
        monkeypatch.delenv(row.key_var, raising=False)
        monkeypatch.delenv(row.base_url_var, raising=False)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "from-os-environ")
    assert names(load_config(None)) == ["deepseek"]


# --- SLUICEGATE_* variables ---------------------------------------------------------------------


def test_sluicegate_variables_without_a_file() -> None:
    env = {"SLUICEGATE_API_KEYS": "c1, c2", "SLUICEGATE_HOST": "0.0.0.0", "SLUICEGATE_PORT": "8080"}
    server = load_config(None, env).server
    assert (server.api_keys, server.host, server.port) == (("c1", "c2"), "0.0.0.0", 8080)


def test_sluicegate_variables_add_to_and_override_the_file(tmp_path: pathlib.Path) -> None:
    text = '[server]\nhost = "10.1.1.1"\nport = 5000\napi_keys = ["file-key", "shared"]\n'
    env = {
        "SLUICEGATE_API_KEYS": "shared,env-key",
        "SLUICEGATE_HOST": "::1",
        "SLUICEGATE_PORT": "0",
    }
    server = load_text(tmp_path, text, **env).server
    assert server.api_keys == ("file-key", "shared", "env-key")
    assert (server.host, server.port) == ("::1", 0)


def test_empty_sluicegate_variables_change_nothing(tmp_path: pathlib.Path) -> None:
    text = '[server]\nhost = "10.1.1.1"\nport = 5000\n'
    server = load_text(tmp_path, text, SLUICEGATE_HOST="", SLUICEGATE_PORT="").server
    assert (server.host, server.port, server.api_keys) == ("10.1.1.1", 5000, ())


@pytest.mark.parametrize("port", ["http", "65536", "-1", "4000.5"])
def test_bad_sluicegate_port(port: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"SLUICEGATE_PORT": port})
    message = str(info.value)
    assert f'SLUICEGATE_PORT is "{port}"' in message and "0-65535" in message


# --- the file -----------------------------------------------------------------------------------


def test_the_documented_example(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, SPEC_EXAMPLE)
    config = load_config(pathlib.Path(path), {"SLUICEGATE_KEY": "gw-key", "VLLM_KEY": "vk"})
    assert config.path == path
    assert config.server == ServerConfig(
        host="127.0.0.1", port=4000, api_keys=("gw-key",), max_body_bytes=16777216
    )
    assert config.providers == (
        ProviderConfig(
            name="vllm-box",
            kind="openai",
            base_url="http://10.0.0.5:8000/v1",
            api_keys=("vk",),
            models=("Qwen/Qwen3-32B",),
            headers=(("X-Team", "agents"),),
            timeouts=Timeouts(connect=5.0, first_byte=60.0),
            source="config",
        ),
    )
    # No file provider is off and no URL is suspicious: only the env providers' notices remain.
    assert all(": off (" in n and n.split(":")[0] != "vllm-box" for n in config.notices)


def test_an_empty_file_is_the_defaults(tmp_path: pathlib.Path) -> None:
    config = load_text(tmp_path, "# nothing yet\n")
    assert config.server == ServerConfig()
    assert config.providers == ()


def test_every_server_key(tmp_path: pathlib.Path) -> None:
    text = """\
[server]
host = "0.0.0.0"
port = 0
api_keys = ["a", "b,c"]
max_body_bytes = 1024
max_header_bytes = 2048
header_timeout = 1.5
keepalive_timeout = 2
shutdown_grace = 0
models_cache_ttl = 0
"""
    assert load_text(tmp_path, text).server == ServerConfig(
        host="0.0.0.0",
        port=0,
        api_keys=("a", "b", "c"),
        max_body_bytes=1024,
        max_header_bytes=2048,
        header_timeout=1.5,
        keepalive_timeout=2.0,
        shutdown_grace=0.0,
        models_cache_ttl=0.0,
    )


def test_api_keys_list_and_trailing_slash(tmp_path: pathlib.Path) -> None:
    text = MINIMAL_PROVIDER.replace("/v1", "/v1/") + 'api_keys = ["k1", "k2", "k1"]\n'
    (provider,) = load_text(tmp_path, text).providers
    assert provider.api_keys == ("k1", "k2")
    assert provider.base_url == "http://h:8000/v1"


def test_file_base_url_without_v1_is_a_notice_with_the_line(tmp_path: pathlib.Path) -> None:
    text = MINIMAL_PROVIDER.replace("/v1", "")
    config = load_text(tmp_path, text)
    assert config.providers[0].base_url == "http://h:8000"
    (notice,) = [n for n in config.notices if n.startswith("box:")]
    assert "line 4" in notice and "does not end in /v1" in notice and "add it" in notice


# --- interpolation ------------------------------------------------------------------------------


def test_interpolation_set_default_and_escape(tmp_path: pathlib.Path) -> None:
    text = """\
[[providers]]
name = "${NAME}"
kind = "openai"
base_url = "http://${HOST:-localhost}:${PORT:-8000}/v1"
models = ["$${NOT_A_VAR}", "cost$5", "${EMPTY:-fallback}", "${INJECT}"]
headers = { "X-Team" = "${TEAM}-x" }
"""
    env = {"NAME": "box", "PORT": "9000", "TEAM": "agents", "EMPTY": "", "INJECT": "${NAME}"}
    (provider,) = load_text(tmp_path, text, **env).providers
    assert provider.name == "box"
    assert provider.base_url == "http://localhost:9000/v1"
    # $${ is a literal ${; a lone $ stays; an empty variable takes the default; a value from
    # the environment is never interpolated again.
    assert provider.models == ("${NOT_A_VAR}", "cost$5", "fallback", "${NAME}")
    assert provider.headers == (("X-Team", "agents-x"),)


def test_numbers_may_come_from_interpolation(tmp_path: pathlib.Path) -> None:
    text = '[server]\nport = "${PORT:-4001}"\nheader_timeout = "${HT}"\n'
    server = load_text(tmp_path, text, HT="2.5").server
    assert (server.port, server.header_timeout) == (4001, 2.5)


def test_unset_variable_is_an_error_with_key_line_and_fix(tmp_path: pathlib.Path) -> None:
    text = MINIMAL_PROVIDER + 'models = ["a"]\nheaders = { "X-Team" = "${TEAM}" }\n'
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert str(info.value) == (
        f"{path} line 6: providers[0].headers.X-Team refers to ${{TEAM}}, which is not set; "
        "export it or use ${TEAM:-default}"
    )


def test_empty_variable_is_an_error_that_says_empty(tmp_path: pathlib.Path) -> None:
    message = error_for(tmp_path, '[server]\nhost = "${H}"\n', H="")
    assert "line 2: server.host refers to ${H}, which is set but empty" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${HOST", "has an unclosed ${; close it with }"),
        ("${1HOST}", "has ${1HOST}, which is not a variable reference; write ${NAME}"),
        ("${}", "has ${}, which is not a variable reference"),
    ],
)
def test_malformed_reference(tmp_path: pathlib.Path, value: str, expected: str) -> None:
    message = error_for(tmp_path, f'[server]\n\nhost = "{value}"\n')
    assert "line 3: server.host " in message and expected in message


def test_unset_api_key_variable_turns_the_provider_off(tmp_path: pathlib.Path) -> None:
    config = load_text(tmp_path, SPEC_EXAMPLE, SLUICEGATE_KEY="gw")
    assert config.providers == ()
    assert config.notices[0] == (
        f"vllm-box: off ({config.path} line 11: providers[0].api_key refers to ${{VLLM_KEY}}, "
        "which is not set; export VLLM_KEY to turn it on)"
    )


def test_an_off_provider_is_still_validated(tmp_path: pathlib.Path) -> None:
    text = MINIMAL_PROVIDER + 'api_key = "${MISSING}"\ntimeouts = { connect = 0 }\n'
    assert "providers[0].timeouts.connect is 0" in error_for(tmp_path, text)


def test_api_keys_with_some_variables_unset_keep_the_others(tmp_path: pathlib.Path) -> None:
    text = MINIMAL_PROVIDER + 'api_keys = ["${KEY_A}", "${KEY_B}"]\n'
    config = load_text(tmp_path, text, KEY_B="kb")
    assert config.providers[0].api_keys == ("kb",)
    (notice,) = [n for n in config.notices if n.startswith("box:")]
    assert "line 5: providers[0].api_keys[0] refers to ${KEY_A}" in notice
    assert "other keys" in notice


def test_api_keys_all_unset_turn_the_provider_off(tmp_path: pathlib.Path) -> None:
    text = MINIMAL_PROVIDER + 'api_keys = ["${KEY_A}", "${KEY_B}"]\n'
    config = load_text(tmp_path, text)
    assert config.providers == ()
    assert any(n.startswith("box: off (") and "${KEY_A}" in n for n in config.notices)


def test_api_key_with_an_empty_default_means_no_key(tmp_path: pathlib.Path) -> None:
    config = load_text(tmp_path, MINIMAL_PROVIDER + 'api_key = "${LOCAL_KEY:-}"\n')
    assert config.providers[0].api_keys == ()


def test_api_key_variable_may_hold_several_keys(tmp_path: pathlib.Path) -> None:
    config = load_text(tmp_path, MINIMAL_PROVIDER + 'api_key = "${K}"\n', K="k1,k2")
    assert config.providers[0].api_keys == ("k1", "k2")


def test_unset_server_key_variable_is_an_error_not_a_silent_open_gateway(
    tmp_path: pathlib.Path,
) -> None:
    message = error_for(tmp_path, '[server]\napi_keys = ["${SLUICEGATE_KEY}"]\n')
    assert "line 2: server.api_keys[0] refers to ${SLUICEGATE_KEY}, which is not set" in message


def test_empty_server_key_is_an_error(tmp_path: pathlib.Path) -> None:
    message = error_for(tmp_path, '[server]\napi_keys = ["${K:-}"]\n')
    assert "line 2: server.api_keys[0] is empty; remove it" in message


# --- file and environment together --------------------------------------------------------------


def test_file_provider_replaces_the_env_provider_of_the_same_name(tmp_path: pathlib.Path) -> None:
    text = '[[providers]]\nname = "openai"\nkind = "openai"\nbase_url = "http://proxy/v1"\n'
    env = {"OPENAI_API_KEY": "env-key", "DEEPSEEK_API_KEY": "dk"}
    config = load_text(tmp_path, text, **env)
    assert names(config) == ["openai", "deepseek"]
    assert config.providers[0].base_url == "http://proxy/v1"
    assert config.providers[0].api_keys == ()
    assert config.providers[0].source == "config"
    assert config.providers[1].source == "env:DEEPSEEK_API_KEY"
    assert not any(n.startswith("openai:") for n in config.notices)


def test_file_provider_that_is_off_does_not_fall_back_to_the_env(tmp_path: pathlib.Path) -> None:
    text = (
        '[[providers]]\nname = "openai"\nkind = "openai"\nbase_url = "http://proxy/v1"\n'
        'api_key = "${PROXY_KEY}"\n'
    )
    config = load_text(tmp_path, text, OPENAI_API_KEY="env-key")
    assert config.providers == ()
    assert config.notices[0].startswith("openai: off (")


# --- validation messages ------------------------------------------------------------------------

VALIDATION_CASES = [
    pytest.param(
        "[srever]\nport = 1\n",
        ["line 1:", "srever is not a known top-level table", 'did you mean "server"', "[server]"],
        id="unknown-table",
    ),
    pytest.param(
        "[server]\n\nprot = 1\n",
        ["line 3:", "server.prot is not a known key", 'did you mean "port"', "host, port,"],
        id="unknown-server-key",
    ),
    pytest.param(
        MINIMAL_PROVIDER + "modles = []\n",
        ["line 5:", "providers[0].modles is not a known key", 'did you mean "models"'],
        id="unknown-provider-key",
    ),
    pytest.param(
        MINIMAL_PROVIDER + "[providers.timeouts]\nconect = 1\n",
        ["line 6:", "providers[0].timeouts.conect", 'did you mean "connect"', "first_byte"],
        id="unknown-timeout-key",
    ),
    pytest.param(
        MINIMAL_PROVIDER
        + "\n"
        + MINIMAL_PROVIDER.replace("box", "two")
        + '[providers.timeouts]\nconnect = "fast"\n',
        [
            "line 11:",
            'providers[1].timeouts.connect must be a number of seconds, got string "fast"',
            "connect = 10",
        ],
        id="timeout-wrong-type",
    ),
    pytest.param(
        "[server]\nport = true\n",
        ["line 2:", "server.port must be a port number, got boolean", "port = 10"],
        id="port-wrong-type",
    ),
    pytest.param(
        "[server]\nport = 4000.0\n",
        ["line 2:", "server.port must be a port number, got 4000.0", "whole number"],
        id="port-float",
    ),
    pytest.param(
        "[server]\nport = 70000\n",
        ["line 2:", "server.port is 70000, out of range", "1-65535"],
        id="port-range",
    ),
    pytest.param(
        "[server]\nhost = 5\n",
        ["line 2:", "server.host must be a string, got integer", 'host = "127.0.0.1"'],
        id="host-wrong-type",
    ),
    pytest.param(
        "[server]\nmax_body_bytes = 0\n",
        ["line 2:", "server.max_body_bytes is 0", "greater than 0"],
        id="zero-bytes",
    ),
    pytest.param(
        "[server]\nshutdown_grace = -1\n",
        ["line 2:", "server.shutdown_grace is -1", "0 or more"],
        id="negative-grace",
    ),
    pytest.param(
        '[server]\napi_keys = "k"\n',
        ["line 2:", "server.api_keys must be an array of strings, got string", 'api_keys = ["'],
        id="server-keys-not-a-list",
    ),
    pytest.param(
        "server = 5\n",
        ["line 1:", "server must be a table, got integer"],
        id="server-not-a-table",
    ),
    pytest.param(
        '[providers]\nname = "x"\n',
        ["line 1:", "providers must be an array of tables", "[[providers]] (double brackets)"],
        id="providers-single-brackets",
    ),
    pytest.param(
        '# a comment\n[[providers]]\nkind = "openai"\nbase_url = "http://h/v1"\n',
        ["line 2:", "providers[0] has no name", 'add name = "'],
        id="missing-name",
    ),
    pytest.param(
        '[[providers]]\nname = "x"\nbase_url = "http://h/v1"\n',
        ["line 1:", "providers[0] has no kind", 'add kind = "openai"'],
        id="missing-kind",
    ),
    pytest.param(
        '[[providers]]\nname = "x"\nkind = "openai"\n',
        ["line 1:", "providers[0] has no base_url", "add base_url = "],
        id="missing-base-url",
    ),
    pytest.param(
        MINIMAL_PROVIDER.replace('kind = "openai"', 'kind = "openia"'),
        [
            "line 3:",
            'providers[0].kind is "openia", which is not a known kind',
            'did you mean "openai"',
            "Known kinds: openai",
        ],
        id="unknown-kind",
    ),
    pytest.param(
        MINIMAL_PROVIDER + "\n" + MINIMAL_PROVIDER,
        [
            "line 7:",
            'providers[1].name is "box", already the name of providers[0] (line 2)',
            "its own name",
        ],
        id="duplicate-name",
    ),
    pytest.param(
        MINIMAL_PROVIDER.replace('"box"', '"My Box"'),
        ["line 2:", 'providers[0].name is "My Box"', "lower-case", 'for example "my-box"'],
        id="bad-name",
    ),
    pytest.param(
        MINIMAL_PROVIDER.replace('"box"', '"-x"'),
        ["line 2:", 'providers[0].name is "-x"', "starting with a letter or digit"],
        id="name-leading-dash",
    ),
    pytest.param(
        MINIMAL_PROVIDER.replace("http://h:8000/v1", "ftp://h/v1"),
        [
            "line 4:",
            'providers[0].base_url is "ftp://h/v1", which is not an http(s) URL',
            "http://host:8000/v1",
        ],
        id="base-url-scheme",
    ),
    pytest.param(
        MINIMAL_PROVIDER.replace("http://h:8000/v1", "h:8000/v1"),
        ["line 4:", "not an http(s) URL", "with the scheme"],
        id="base-url-no-scheme",
    ),
    pytest.param(
        MINIMAL_PROVIDER.replace("http://h:8000/v1", "http://h:port/v1"),
        ["line 4:", "not a valid URL"],
        id="base-url-bad-port",
    ),
    pytest.param(
        MINIMAL_PROVIDER.replace("http://h:8000/v1", "http://h/v1?x=1"),
        ["line 4:", "has a query or fragment"],
        id="base-url-query",
    ),
    pytest.param(
        MINIMAL_PROVIDER + "timeouts = { connect = -1 }\n",
        ["line 5:", "providers[0].timeouts.connect is -1", "greater than 0"],
        id="negative-timeout",
    ),
    pytest.param(
        MINIMAL_PROVIDER + "timeouts.idle = 0\n",
        ["line 5:", "providers[0].timeouts.idle is 0", "greater than 0"],
        id="zero-timeout-dotted-key",
    ),
    pytest.param(
        MINIMAL_PROVIDER + "[providers.timeouts]\ntotal = nan\n",
        ["line 6:", "providers[0].timeouts.total is nan", "finite"],
        id="nan-timeout",
    ),
    pytest.param(
        MINIMAL_PROVIDER + 'api_key = "a"\napi_keys = ["b"]\n',
        ["line 6:", "providers[0].api_keys is set together with api_key", "keep one"],
        id="api-key-and-api-keys",
    ),
    pytest.param(
        MINIMAL_PROVIDER + "api_key = 5\n",
        ["line 5:", "providers[0].api_key must be a string, got integer"],
        id="api-key-wrong-type",
    ),
    pytest.param(
        MINIMAL_PROVIDER + 'models = "one"\n',
        ["line 5:", "providers[0].models must be an array of strings, got string", "models = ["],
        id="models-not-a-list",
    ),
    pytest.param(
        MINIMAL_PROVIDER + 'models = ["a", ""]\n',
        ["line 5:", "providers[0].models[1] is empty"],
        id="models-empty-entry",
    ),
    pytest.param(
        MINIMAL_PROVIDER + 'headers = { "Bad Header" = "x" }\n',
        ["line 5:", 'providers[0].headers."Bad Header" is not a valid header name'],
        id="header-bad-name",
    ),
    pytest.param(
        MINIMAL_PROVIDER + 'headers = { "Host" = "x" }\n',
        ["line 5:", "providers[0].headers.Host is set by the HTTP client itself", "remove it"],
        id="header-reserved",
    ),
    pytest.param(
        MINIMAL_PROVIDER + 'headers = { "X-A" = "1", "x-a" = "2" }\n',
        ["line 5:", "providers[0].headers.x-a is set twice", "keep one"],
        id="header-twice",
    ),
    pytest.param(
        MINIMAL_PROVIDER + 'headers = { "X-A" = 1 }\n',
        ["line 5:", "providers[0].headers.X-A must be a string, got integer"],
        id="header-wrong-type",
    ),
    pytest.param(
        MINIMAL_PROVIDER + 'api_key = "k"\nheaders = { Authorization = "Bearer x" }\n',
        ["line 6:", "providers[0].headers sets Authorization, and so does api_key", "keep one"],
        id="header-authorization-with-key",
    ),
    pytest.param(
        MINIMAL_PROVIDER + "headers = 3\n",
        ["line 5:", "providers[0].headers must be a table, got integer"],
        id="headers-not-a-table",
    ),
]


@pytest.mark.parametrize(("text", "expected"), VALIDATION_CASES)
def test_validation_message(tmp_path: pathlib.Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    message = str(info.value)
    assert message.startswith(f"{path} line ")
    for part in expected:
        assert part in message


def test_header_value_with_a_line_break_from_the_environment(tmp_path: pathlib.Path) -> None:
    text = MINIMAL_PROVIDER + 'headers = { "X-A" = "${V}" }\n'
    message = error_for(tmp_path, text, V="ok\r\nInjected: yes")
    assert "line 5: providers[0].headers.X-A contains a line break" in message


def test_credentials_in_base_url_are_refused_and_not_echoed(tmp_path: pathlib.Path) -> None:
    text = MINIMAL_PROVIDER.replace("http://h:8000/v1", "https://user:s3cret@h/v1")
    message = error_for(tmp_path, text)
    assert "line 4: providers[0].base_url" in message and "holds credentials" in message
    assert "s3cret" not in message and "user" not in message


def test_interpolated_secret_is_not_echoed_in_a_type_error(tmp_path: pathlib.Path) -> None:
    message = error_for(tmp_path, '[server]\nport = "${P}"\n', P="sk-secret-value")
    assert "server.port must be a port number" in message
    assert "sk-secret-value" not in message and "${P}" in message


# --- syntax, files, lines -----------------------------------------------------------------------


def test_toml_syntax_error_has_line_and_column(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, '[server]\nhost = "127.0.0.1"\nport = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    message = str(info.value)
    assert message.startswith(f"{path} line 3, column 8: TOML syntax error: Invalid value")
    assert "fix the syntax there" in message


def test_toml_duplicate_key_is_a_syntax_error_with_its_line(tmp_path: pathlib.Path) -> None:
    message = error_for(tmp_path, "[server]\nport = 1\nport = 2\n")
    assert "line 3, column" in message and "TOML syntax error" in message


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"^config file /nonexistent/gw\.toml not found; check"):
        load_config("/nonexistent/gw.toml", {})


def test_directory_instead_of_a_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, {})


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "[server]\n")
    os.chmod(path, 0)
    try:
        with pytest.raises(
            ConfigError, match=r"cannot be read.*permission denied.*make it readable"
        ):
            load_config(path, {})
    finally:
        os.chmod(path, 0o600)


def test_path_through_a_file_cannot_be_read(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "[server]\n")
    with pytest.raises(
        ConfigError, match=r"config file .*/x\.toml cannot be read \(Not a directory"
    ):
        load_config(os.path.join(path, "x.toml"), {})


def test_file_that_is_not_utf8(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[server]\nhost = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"line 2: the file is not UTF-8 text; save it as UTF-8"):
        load_config(path, {})


def test_byte_order_mark_is_accepted(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[server]\nport = 4321\n")
    assert load_config(path, {}).server.port == 4321


def test_lines_survive_multiline_values_comments_and_quoted_keys(tmp_path: pathlib.Path) -> None:
    text = """\
# [[providers]] in a comment is not a header
[server]
api_keys = [
  "a",   # name = "not a key"
  '''b''',
]

[[providers]]
"name" = "one"
kind = "openai"
base_url = \"\"\"http://h/v1\"\"\"
models = [\"\"\"
[[providers]]
kind = 1\"\"\", "m"]

[[providers]]
name = "two"
kind = "openai"
base_url = "http://h/v1"
timeouts = { connect = 1, idle = { nested = true } }
"""
    message = error_for(tmp_path, text)
    # The error is in the second [[providers]] (line 16), on its timeouts line (line 20).
    assert "line 20: providers[1].timeouts.idle must be a number of seconds, got table" in message


def test_array_elements_and_inline_tables_have_their_own_lines(tmp_path: pathlib.Path) -> None:
    text = MINIMAL_PROVIDER + 'api_keys = [\n  "k1",\n  5,\n]\n'
    assert "line 7: providers[0].api_keys[1] must be a string" in error_for(tmp_path, text)
    text = """\
providers = [
  { name = "a", kind = "openai", base_url = "http://h/v1" },

  { name = "b", kind = "nope", base_url = "http://h/v1" },
]
"""
    assert 'line 4: providers[1].kind is "nope"' in error_for(tmp_path, text)


def test_source_lines_of_tricky_toml() -> None:
    text = r"""
a = "x\"y # not a comment"   # a comment "
b = 'C:\path\'
c = '''
k = 1 " ""
'''''
e = [ [1, 2], [ "a",
  "b" ], { x = 1, "y.z" = [ 3,
  4 ] } ]   # trailing
f = 1979-05-27 07:32:00Z
h = { "q k" = 1, r.s = 2 }
"i j".k = true
[t . "u v"]
w = 0x1F
"""
    lines = SourceLines(text)
    expected = {
        ("a",): 2,
        ("b",): 3,
        ("c",): 4,
        ("k",): None,  # inside a multi-line string
        ("e", 1, 1): 8,
        ("e", 2, "y.z", 1): 9,
        ("f",): 10,
        ("h", "r", "s"): 11,
        ("i j", "k"): 12,
        ("t", "u v", "w"): 14,
    }
    assert {path: lines.line_of(path) for path in expected} == expected


def test_source_lines_follow_arrays_of_tables_and_subtables() -> None:
    text = """\
[[providers]]
name = "a"
[providers.timeouts]
connect = 1

[[providers]]
name = "b"
  [providers.timeouts]
  idle = 2
[server]
port = 1
"""
    lines = SourceLines(text)
    assert lines.line_of(("providers", 0, "timeouts", "connect")) == 4
    assert lines.line_of(("providers", 1)) == 6
    assert lines.line_of(("providers", 1, "timeouts")) == 8
    assert lines.line_of(("providers", 1, "timeouts", "idle")) == 9
    assert lines.line_of(("providers", 1, "timeouts", "total")) == 8  # missing: its table
    assert lines.line_of(("server", "port")) == 11
    assert lines.line_of(("elsewhere",)) is None


def test_source_lines_give_no_line_rather_than_a_wrong_one() -> None:
    # Not valid TOML: the scanner stops at the first thing it cannot read and forgets nothing
    # it recorded before it.
    lines = SourceLines('[server]\nport = 1\n??? = 2\n[[providers]]\nname = "x"\n')
    assert lines.line_of(("server", "port")) == 2
    assert lines.line_of(("providers", 0, "name")) is None


# --- the reference stays true -------------------------------------------------------------------


def test_every_toml_example_in_the_docs_loads(tmp_path: pathlib.Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/config.md has no ```toml examples"
    # Variables without a default must be set; those with one are left to their default.
    env = {name: "x" for block in blocks for name in re.findall(r"\$\{([A-Za-z_]\w*)\}", block)}
    for i, block in enumerate(blocks):
        load_config(write(tmp_path, block, f"doc{i}.toml"), env)


def test_docs_mention_every_key_and_env_variable() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    keys = [
        *(f.removeprefix("_") for f in ServerConfig.__slots__),
        "name",
        "kind",
        "base_url",
        "api_key",
        "api_keys",
        "models",
        "headers",
        "timeouts",
        *Timeouts.__slots__,
        "SLUICEGATE_API_KEYS",
        "SLUICEGATE_HOST",
        "SLUICEGATE_PORT",
    ]
    for row in ENV_PROVIDERS:
        keys += [row.key_var, row.base_url_var]
    missing = [k for k in keys if f"`{k}`" not in docs]
    assert not missing, f"docs/config.md does not document {missing}"


# --- per-model settings --------------------------------------------------------------------------

MODEL_SETTINGS = """
[[providers]]
name = "di"
kind = "deepinfra"
base_url = "http://127.0.0.1:9"

[providers.model_settings."*"]
stop = ["###"]
params = { repetition_penalty = 1.1, top_k = 40 }

[providers.model_settings."Meta-Llama/Llama-3.3-70B-Instruct"]
chat_template = "tmpl/llama.jinja"
bos_token = "<s>"
stop = ["END"]
params = { top_k = "${TOPK:-20}", temperature = 0.2 }
"""


def test_model_settings_merge_over_the_star_entry(tmp_path: pathlib.Path) -> None:
    config = load_text(tmp_path, MODEL_SETTINGS)
    (provider,) = config.providers
    own = provider.settings_for("meta-llama/llama-3.3-70b-instruct")  # ids ignore case
    assert own.chat_template == "tmpl/llama.jinja"
    assert own.bos_token == "<s>" and own.eos_token is None
    assert own.stop == ("###", "END")
    assert dict(own.params) == {"repetition_penalty": 1.1, "top_k": 20, "temperature": 0.2}
    assert own.base_dir == str(tmp_path)
    other = provider.settings_for("Qwen/Qwen3-32B")
    assert other.stop == ("###",) and dict(other.params) == {"repetition_penalty": 1.1, "top_k": 40}


def test_no_model_settings_is_the_empty_settings() -> None:
    (provider,) = load_config(None, {"DEEPINFRA_API_KEY": "k"}).providers
    settings = provider.settings_for("any/model")
    assert settings.params == () and settings.chat_template is None and settings.stop == ()


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("params = { top_k = 1.5 }", "params.top_k is 1.5; it must be a whole number between 0"),
        ("params = { repetition_penalty = 9 }", "must be a number between 0.01 and 5"),
        ("params = { temprature = 1 }", 'did you mean "temperature"?'),
        ('stop = [""]', "a stop string needs at least one character"),
        ('chat_template = "  "', "chat_template is empty"),
        ('chat_tmplate = "x"', 'did you mean "chat_template"?'),
    ],
)
def test_bad_model_settings_name_the_key(tmp_path: pathlib.Path, entry: str, expected: str) -> None:
    text = f"""
[[providers]]
name = "di"
kind = "deepinfra"
base_url = "http://127.0.0.1:9"

[providers.model_settings."m/x"]
{entry}
"""
    message = error_for(tmp_path, text)
    assert expected in message, message
    assert "line 8" in message, message


# --- aliases ------------------------------------------------------------------------------------

ALIASES = """
[[providers]]
name = "box"
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[[providers]]
name = "remote"
kind = "openai"
base_url = "http://127.0.0.1:8/v1"
api_key = "${REMOTE_KEY}"

[providers.breaker]
failures = 3
open_seconds = 10

[[models]]
id = "smart"
name = "Smart"
routes = ["remote/big-model", "box/Qwen/Qwen3-32B", "openai/gpt-4o-mini"]
params = { temperature = 0.6, chat_template_kwargs = { enable_thinking = false } }
context_window = 131072
max_tokens = 8192
input = ["text", "image"]
reasoning = true
pricing = { input = 0.23, output = 0.4 }
"""


def test_aliases_keep_the_routes_whose_provider_is_on(tmp_path: pathlib.Path) -> None:
    config = load_text(tmp_path, ALIASES, OPENAI_API_KEY="sk-x")
    (smart,) = config.models
    assert smart.routes == ("box/Qwen/Qwen3-32B", "openai/gpt-4o-mini")
    assert "model smart: route remote/big-model is off (provider remote is off)" in config.notices
    assert smart.name == "Smart" and smart.reasoning is True and smart.input == ("text", "image")
    assert dict(smart.params) == {
        "temperature": 0.6,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    assert (smart.context_window, smart.max_tokens) == (131072, 8192)
    assert smart.pricing is not None and (smart.pricing.input, smart.pricing.cache_read) == (
        0.23,
        0,
    )
    remote = load_text(tmp_path, ALIASES, REMOTE_KEY="k").providers[1]
    assert (remote.breaker.failures, remote.breaker.open_seconds) == (3, 10)


def test_an_alias_with_no_route_on_is_off(tmp_path: pathlib.Path) -> None:
    config = load_text(tmp_path, ALIASES.replace('"box/Qwen/Qwen3-32B", "openai/gpt-4o-mini"', ""))
    assert config.models == ()
    assert "model smart: off (none of its routes' providers is on)" in config.notices


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('"box/Qwen/Qwen3-32B"', '"nobody/x"'), "names provider 'nobody', which is not declared"),
        (('"box/Qwen/Qwen3-32B"', '"box"'), 'a route is "provider/model"'),
        (('id = "smart"', 'id = "two words"'), "without spaces"),
        (("max_tokens = 8192", "max_tokens = 0"), "greater than 0"),
        (('input = ["text", "image"]', 'input = ["smell"]'), "use one of: text, image"),
        (("reasoning = true", 'reasoning = "yes"'), "must be true or false"),
        (("output = 0.4", "output = -1"), "a price is 0 or more"),
        (("temperature = 0.6", "stream = true"), "params.stream cannot be a default"),
        (("routes = [", "route = ["), 'did you mean "routes"?'),
    ],
)
def test_bad_aliases_are_named(
    tmp_path: pathlib.Path, change: tuple[str, str], expected: str
) -> None:
    message = error_for(tmp_path, ALIASES.replace(*change), REMOTE_KEY="k")
    assert expected in message, message


def test_duplicate_alias_ids_ignore_case(tmp_path: pathlib.Path) -> None:
    text = ALIASES + '\n[[models]]\nid = "SMART"\nroutes = ["box/m"]\n'
    assert "already the id of models[0]" in error_for(tmp_path, text)
