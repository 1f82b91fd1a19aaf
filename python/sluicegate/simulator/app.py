"""The simulator's routes: dialect endpoints plus `/healthz` and the `/sim/*` introspection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing

import orjson
import trio

from sluicegate.errors import GatewayError, error_body
from sluicegate.server import (
    AbortConnection,
    Handler,
    Request,
    Response,
    StreamingResponse,
    serve,
)
from sluicegate.simulator import anthropic, deepinfra, ollama, openai, tgi
from sluicegate.simulator.state import SimulatorState

Route = Callable[[Request], Awaitable[Response | StreamingResponse]]


async def _healthz(request: Request) -> Response:
    return Response(200, b'{"status":"ok"}')


async def _models(request: Request) -> Response:
    # OpenAI and Anthropic both serve GET /v1/models. Anthropic clients always send
    # anthropic-version and x-api-key, OpenAI clients never do: those headers pick the list.
    if anthropic.wants_model_list(request):
        return anthropic.list_models()
    return openai.list_models()


# (method, path) -> route. Native dialects add their paths here, each from its own module.
_ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/healthz"): _healthz,
    ("GET", "/v1/models"): _models,
    ("POST", "/v1/chat/completions"): openai.chat_completions,
    ("POST", "/v1/embeddings"): openai.embeddings,
    ("GET", "/v1/openai/models"): deepinfra.list_models,
    ("POST", "/generate"): tgi.generate,
    ("POST", "/generate_stream"): tgi.generate_stream,
    ("POST", "/"): tgi.compat_generate,
    ("GET", "/info"): tgi.info,
    ("GET", "/health"): tgi.health,
    ("POST", "/api/chat"): ollama.chat,
    ("POST", "/api/embed"): ollama.embed,
    ("GET", "/api/tags"): ollama.tags,
    ("POST", "/api/show"): ollama.show,
    ("GET", "/api/version"): ollama.version,
    ("POST", "/v1/messages"): anthropic.messages,
}
# (method, path prefix) -> route, for paths that carry a parameter the route reads itself
# (a model id, which may hold slashes). Exact routes win; then the longest prefix.
_PREFIX_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", deepinfra.INFERENCE_PREFIX): deepinfra.inference,
}


def _route_for(method: str, path: str) -> Route | None:
    route = _ROUTES.get((method, path))
    if route is not None:
        return route
    best: tuple[int, Route] | None = None
    for (route_method, prefix), candidate in _PREFIX_ROUTES.items():
        fits = route_method == method and path.startswith(prefix)
        if fits and (best is None or len(prefix) > best[0]):
            best = (len(prefix), candidate)
    return best[1] if best else None


def _known_routes() -> str:
    exact = [f"{m} {p}" for m, p in _ROUTES]
    prefixed = [f"{m} {p}{{...}}" for m, p in _PREFIX_ROUTES]
    return ", ".join(exact + prefixed)


def _parsed_body(raw: bytes) -> object:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


async def _counted(state: SimulatorState, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Keep the stream counters; a stream closed before its end means the peer went away."""
    state.active_streams += 1
    outcome = "disconnected"
    try:
        async with aclosing(chunks):
            async for chunk in chunks:
                yield chunk
        outcome = "completed"
    except AbortConnection:
        outcome = "aborted"  # the script dropped the connection on purpose
        raise
    finally:
        state.active_streams -= 1
        if outcome == "completed":
            state.completed_streams += 1
        elif outcome == "disconnected":
            state.client_disconnects += 1


def make_simulator_handler(state: SimulatorState | None = None) -> Handler:
    """The simulator as a server ``Handler``; ``state`` collects what it saw."""
    state = state if state is not None else SimulatorState()

    async def handle(request: Request) -> Response | StreamingResponse:
        if request.path == "/sim/stats":
            return Response(200, orjson.dumps(state.stats()))
        if request.path == "/sim/requests":
            return Response(200, orjson.dumps({"requests": list(state.recent)}))
        state.record(
            request.method,
            request.path,
            {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers},
            _parsed_body(request.body),
            request.client,
        )
        route = _route_for(request.method, request.path)
        if route is None:
            known = _known_routes()
            message = f"no simulated endpoint {request.method} {request.path}; try: {known}"
            return Response(404, error_body(message, "not_found_error", "unknown_url"))
        try:
            response = await route(request)
        except GatewayError as exc:
            return Response(exc.status, exc.body(), list(exc.headers))
        if isinstance(response, StreamingResponse):
            response.chunks = _counted(state, aiter(response.chunks))
        return response

    return handle


async def serve_simulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    state: SimulatorState | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the simulator on ``host:port`` (0 = any free port) until cancelled."""
    await serve(make_simulator_handler(state), host, port, task_status=task_status)
