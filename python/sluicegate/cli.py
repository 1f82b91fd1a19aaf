"""The ``sluicegate`` command: serve, simulate, demo, run, openclaw-config.

Exit codes: 0 clean stop, 1 runtime failure (e.g. the port is taken), 2 usage or
configuration error. Messages go to stderr and say what to change; stdout carries only what a
verb prints as its product (the demo's ready-to-paste curl line, openclaw-config's JSON).
"""

from __future__ import annotations

import argparse
import errno
import gc
import ipaddress
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial

import trio

from sluicegate import __version__
from sluicegate.config import Config, ConfigError, ProviderConfig, load_config
from sluicegate.logs import LEVELS, setup_logging
from sluicegate.workers import MAX_WORKERS, reserve_port, run_workers

log = logging.getLogger("sluicegate")

DEFAULT_PORT = 4000
DEFAULT_SIMULATOR_PORT = 4010
EXIT_RUNTIME = 1
EXIT_USAGE = 2


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def _add_common(parser: argparse.ArgumentParser, *, config: bool = True) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help=f"port to listen on (default {DEFAULT_PORT})")
    if config:
        parser.add_argument(
            "--config",
            metavar="FILE",
            help="TOML config file (default: $SLUICEGATE_CONFIG, else the environment only)",
        )
        parser.add_argument(
            "--insecure",
            action="store_true",
            help="allow listening on a non-loopback address without client API keys",
        )
    parser.add_argument(
        "--log-level", choices=LEVELS, help="default: $SLUICEGATE_LOG_LEVEL or info"
    )


def _add_workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="gateway processes sharing the port via SO_REUSEPORT "
        "(default: $SLUICEGATE_WORKERS or 1; at most 64)",
    )
    # Set by the supervisor on the processes it starts; not for people.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluicegate",
        description="A self-hosted LLM gateway: the OpenAI API in front, each provider's native "
        "API behind.",
        epilog="Run 'sluicegate <verb> --help' for a verb's options.",
    )
    parser.add_argument("--version", action="version", version=f"sluicegate {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>", required=True)

    serve = verbs.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway with the providers from --config and the environment.",
    )
    _add_common(serve)
    _add_workers(serve)
    serve.set_defaults(func=cmd_serve)

    simulate = verbs.add_parser(
        "simulate",
        help="run the provider simulator",
        description="Run a local server that speaks the providers' native APIs with "
        "deterministic answers; choose behaviour per request with '#sim key=value' in the last "
        "user message (see README).",
    )
    _add_common(simulate, config=False)
    simulate.set_defaults(func=cmd_simulate)

    demo = verbs.add_parser(
        "demo",
        help="run the simulator and a gateway wired to it",
        description="Start the simulator and a gateway with a provider 'sim' pointing at it, "
        "then print a ready-to-paste curl line.",
    )
    _add_common(demo)
    demo.set_defaults(func=cmd_demo)

    run = verbs.add_parser(
        "run",
        help="serve if any provider is configured, else demo (what 'make run' does)",
        description="Serve when a provider is configured (environment or --config); "
        "otherwise start the demo so there is always something real to talk to.",
    )
    _add_common(run)
    _add_workers(run)
    run.set_defaults(func=cmd_run)

    openclaw = verbs.add_parser(
        "openclaw-config",
        help="print the openclaw.json block that registers this gateway with OpenClaw",
        description="Print, as JSON on stdout, the models.providers.<id> block and "
        "agents.defaults.model for OpenClaw's ~/.openclaw/openclaw.json, with the models of "
        "--config ([[models]] aliases, then providers' static models). See deploy/openclaw/.",
    )
    _add_openclaw_options(openclaw)
    openclaw.set_defaults(func=cmd_openclaw_config, host=None, port=None)
    return parser


def _add_openclaw_options(parser: argparse.ArgumentParser) -> None:
    from sluicegate.openclaw import DEFAULT_API_KEY_ENV, DEFAULT_PROVIDER_ID

    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (default: $SLUICEGATE_CONFIG, else the environment only)",
    )
    parser.add_argument(
        "--provider-id",
        metavar="ID",
        default=DEFAULT_PROVIDER_ID,
        help="OpenClaw's name for the gateway; agents say ID/<model> "
        f"(default {DEFAULT_PROVIDER_ID})",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="the gateway's URL as OpenClaw reaches it, ending in /v1 "
        "(default: http://<[server] host>:<port>/v1, 0.0.0.0 shown as 127.0.0.1)",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="VAR",
        default=DEFAULT_API_KEY_ENV,
        help="the variable OpenClaw reads the gateway key from, written as ${VAR} "
        f"(default {DEFAULT_API_KEY_ENV})",
    )
    parser.add_argument(
        "--primary", metavar="MODEL", help="the agents' model (default: the first alias)"
    )
    parser.add_argument(
        "--fallback",
        metavar="MODEL",
        nargs="+",
        action="extend",
        help="models to fall back to, in order (default: the other aliases, in file order)",
    )
    parser.add_argument(
        "--log-level", choices=LEVELS, help="default: $SLUICEGATE_LOG_LEVEL or info"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"sluicegate: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 0


# --- shared helpers -------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> Config:
    path = args.config or os.environ.get("SLUICEGATE_CONFIG") or None
    from sluicegate.discovery import with_local_ollama
    from sluicegate.profiles import check_templates

    try:
        config = load_config(path)
        check_templates(config, os.environ)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    config = with_local_ollama(config, os.environ)
    server = config.server
    if args.host:
        server = replace(server, host=args.host)
    if args.port is not None:
        server = replace(server, port=args.port)
    if not 0 <= server.port <= 65535:
        raise CliError(f"--port {server.port} is out of range; use 0-65535.")
    return replace(config, server=server)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_exposure(config: Config, insecure: bool) -> None:
    host = config.server.host
    if _is_loopback(host) or config.server.api_keys or insecure:
        return
    raise CliError(
        f"refusing to listen on {host} without client API keys: anyone who can reach this port "
        "could spend your provider credits. Set SLUICEGATE_API_KEYS (or [server] api_keys in the "
        "config), listen on 127.0.0.1, or pass --insecure if the network is yours alone."
    )


def _report_providers(config: Config) -> None:
    for notice in config.notices:
        log.info("%s", notice)
    for p in config.providers:
        keys = f"{len(p.api_keys)} key(s)" if p.api_keys else "no key"
        log.info(
            "provider %s: on (%s, %s, %s, from %s)", p.name, p.kind, p.base_url, keys, p.source
        )
    if not config.providers:
        log.warning(
            "no provider is configured: set a key such as OPENAI_API_KEY or declare [[providers]] "
            "in a config file; until then every chat request answers 404 model_not_found"
        )


def _run_trio(main_fn: Callable[[], Awaitable[None]], host: str, port: int) -> int:
    try:
        trio.run(main_fn)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(
                f"port {port} on {host} is already in use; stop the other process or pass --port.",
                EXIT_RUNTIME,
            ) from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            raise CliError(
                f"cannot listen on {host}:{port}: {exc.strerror}.", EXIT_RUNTIME
            ) from None
        raise
    return 0


async def _until_signalled(shutdown: trio.Event, cancel: trio.CancelScope) -> None:
    """First SIGTERM/SIGINT: graceful shutdown. A second one: stop at once."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            if not shutdown.is_set():
                log.info(
                    "%s: stopping (in-flight requests may finish; send again to stop at once)",
                    signal.Signals(signum).name,
                )
                shutdown.set()
            else:
                cancel.cancel()
                return


async def _serve_config(
    config: Config, *, announce: Callable[[int], None] | None = None, reuse_port: bool = False
) -> None:
    from sluicegate.app import Gateway, serve_gateway

    shutdown = trio.Event()
    gateway = Gateway(config)
    async with trio.open_nursery() as nursery:

        async def run_gateway(task_status: trio.TaskStatus[int]) -> None:
            host, port = config.server.host, config.server.port
            await serve_gateway(
                gateway,
                host,
                port,
                shutdown=shutdown,
                reuse_port=reuse_port,
                task_status=task_status,
            )
            # serve_gateway returns once a graceful shutdown is over: stop the signal watcher too.
            nursery.cancel_scope.cancel()

        nursery.start_soon(_until_signalled, shutdown, nursery.cancel_scope)
        port = await nursery.start(run_gateway)
        log.info(
            "sluicegate %s listening on http://%s:%d/v1 (pid %d)",
            __version__,
            config.server.host,
            port,
            os.getpid(),
        )
        if announce:
            announce(port)
        _freeze_startup_objects()
    log.info("stopped")


def _freeze_startup_objects() -> None:
    """Take what start-up allocated (modules, config, the app: ~30k objects that live as long
    as the process) out of the garbage collector's view. Otherwise every full collection walks
    them all — ~15 ms on a 2-core EPYC, landing on whichever request is running: a p99 cost."""
    gc.collect()
    gc.freeze()


# --- verbs ----------------------------------------------------------------------------------


def _worker_count(args: argparse.Namespace) -> int:
    raw = args.workers if args.workers is not None else os.environ.get("SLUICEGATE_WORKERS") or 1
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise CliError(
            f"--workers / SLUICEGATE_WORKERS is {raw!r}; give a whole number from 1 to "
            f"{MAX_WORKERS} (one per CPU core is a good start)."
        )
    return count


def cmd_serve(args: argparse.Namespace, config: Config | None = None) -> int:
    config = config or _load(args)
    workers = 1 if args.worker else _worker_count(args)
    if not args.worker:
        _check_exposure(config, args.insecure)
    if workers > 1:
        return _supervise(args, config, workers)
    _report_providers(config)
    serving = partial(_serve_config, config, reuse_port=args.worker)
    return _run_trio(serving, config.server.host, config.server.port)


def _supervise(args: argparse.Namespace, config: Config, workers: int) -> int:
    host = config.server.host
    try:
        reservation, port = reserve_port(host, config.server.port)
    except OSError as exc:
        raise CliError(
            f"cannot listen on {host}:{config.server.port}: {exc.strerror}.", 1
        ) from None
    worker_args = ["serve", "--worker", "--host", host, "--port", str(port)]
    if args.config:
        worker_args += ["--config", args.config]
    if args.log_level:
        worker_args += ["--log-level", args.log_level]
    from sluicegate.discovery import local_ollama_env

    log.info("starting %d workers on http://%s:%d/v1 (SO_REUSEPORT)", workers, host, port)
    return run_workers(workers, worker_args, reservation, local_ollama_env(config))


def cmd_simulate(args: argparse.Namespace) -> int:
    from sluicegate.simulator import serve_simulator

    host = args.host or "127.0.0.1"
    port = DEFAULT_SIMULATOR_PORT if args.port is None else args.port

    async def main_fn() -> None:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(partial(serve_simulator, host, port))
            log.info(
                "simulator listening on http://%s:%d (OpenAI-compatible: /v1; "
                "DeepInfra native: /v1/inference/{model})",
                host,
                bound,
            )
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()

    return _run_trio(main_fn, host, port)


def demo_providers(simulator_port: int) -> tuple[ProviderConfig, ...]:
    """The simulator as two providers: ``sim`` (OpenAI-compatible) and ``sim-native``
    (DeepInfra's native API, e.g. ``sim-native/meta-llama/Meta-Llama-3.1-8B-Instruct``)."""
    root = f"http://127.0.0.1:{simulator_port}"
    return (
        ProviderConfig("sim", "openai", f"{root}/v1", api_keys=(), source="demo simulator"),
        ProviderConfig("sim-native", "deepinfra", root, api_keys=(), source="demo simulator"),
    )


def _curl_line(port: int, host: str, auth: bool) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    auth_header = ' -H "Authorization: Bearer $SLUICEGATE_KEY"' if auth else ""
    body = '{"model":"sim/sim-small","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'
    return (
        f"curl -sN http://{shown}:{port}/v1/chat/completions{auth_header} "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


def cmd_demo(args: argparse.Namespace, config: Config | None = None) -> int:
    from sluicegate.simulator import serve_simulator

    config = config or _load(args)
    _check_exposure(config, args.insecure)

    async def main_fn() -> None:
        async with trio.open_nursery() as nursery:
            sim_port = await nursery.start(partial(serve_simulator, "127.0.0.1", 0))
            log.info("simulator listening on http://127.0.0.1:%d", sim_port)
            demo = demo_providers(sim_port)
            names = {p.name for p in demo}
            others = tuple(p for p in config.providers if p.name not in names)
            wired = replace(config, providers=(*demo, *others))
            _report_providers(wired)

            def announce(port: int) -> None:
                print("sluicegate demo is up. Try:", flush=True)
                print(_curl_line(port, wired.server.host, bool(wired.server.api_keys)), flush=True)

            await _serve_config(wired, announce=announce)
            nursery.cancel_scope.cancel()

    return _run_trio(main_fn, config.server.host, config.server.port)


def cmd_openclaw_config(args: argparse.Namespace) -> int:
    from sluicegate.openclaw import OpenClawConfigError, OpenClawOptions, build_openclaw_config

    config = _load(args)
    for notice in config.notices:
        log.info("%s", notice)
    options = OpenClawOptions(
        provider_id=args.provider_id,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        primary=args.primary,
        fallbacks=tuple(args.fallback or ()),
    )
    try:
        built = build_openclaw_config(config, options)
    except OpenClawConfigError as exc:
        raise CliError(str(exc)) from None
    for note in built.notes:
        log.info("%s", note)
    for warning in built.warnings:
        log.warning("%s", warning)
    provider = built.document["models"]["providers"][args.provider_id]
    log.info(
        "OpenClaw provider %s: %d model(s) at %s; merge the JSON on stdout into "
        "~/.openclaw/openclaw.json",
        args.provider_id,
        len(provider["models"]),
        provider["baseUrl"],
    )
    print(json.dumps(built.document, indent=2), flush=True)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    if config.providers:
        return cmd_serve(args, config)
    log.info("no provider configured: starting the demo (simulator + gateway)")
    return cmd_demo(args, config)
