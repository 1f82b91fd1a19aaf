"""The gateway's HTTP face: routes, client auth, and the chat-completions exchange.

The server layer hands each parsed request to ``Gateway.handle``; this module picks the route,
sends the native request upstream and streams the transcoder's output back. The hot path per
upstream read is: one ``StreamTranscoder.feed`` call, one yielded bytes object (one socket write).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import httpx
import orjson
import trio

from sluicegate._core import StreamTranscoder
from sluicegate.chat import ChatRequest, parse_chat_request
from sluicegate.config import Config
from sluicegate.embeddings import parse_embeddings_request
from sluicegate.errors import GatewayError
from sluicegate.fallback import RouteFailed, RouteWalker
from sluicegate.models import ModelCatalog
from sluicegate.profiles import ModelProfiles
from sluicegate.providers import UpstreamFailure
from sluicegate.resilience import (
    DEFAULT_AUTH_COOLDOWN,
    DEFAULT_RATE_LIMIT_COOLDOWN,
    key_fingerprint,
    retry_after_seconds,
)
from sluicegate.routing import Route, RouteTable
from sluicegate.server import Request, Response, ServerLimits, StreamingResponse, serve
from sluicegate.upstream import (
    MAX_ERROR_BODY_BYTES,
    MAX_JSON_BODY_BYTES,
    BodyChunks,
    IdleTimeout,
    TotalTimeout,
    UpstreamExchange,
    UpstreamPool,
    open_upstream,
    read_body,
)

if TYPE_CHECKING:
    from sluicegate.templates import TemplateResolver

log = logging.getLogger("sluicegate.gateway")

_ROUTES: dict[str, frozenset[str]] = {
    "/healthz": frozenset({"GET"}),
    "/v1/models": frozenset({"GET"}),
    "/v1/chat/completions": frozenset({"POST"}),
    "/v1/embeddings": frozenset({"POST"}),
}


class ClientAuth:
    """Bearer keys for the gateway itself; no keys configured means no auth."""

    def __init__(self, keys: tuple[str, ...]):
        self._keys = tuple(k.encode() for k in keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, request: Request) -> None:
        if not self._keys:
            return
        header = request.header("authorization") or ""
        scheme, _, token = header.partition(" ")
        presented = token.strip().encode() if scheme.lower() == "bearer" else b""
        # Compare against every key, whatever matches, so timing says nothing about the keys.
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(presented, key)
        if not ok:
            raise GatewayError(
                401,
                "Incorrect or missing API key for this gateway. Send 'Authorization: Bearer <key>' "
                "with one of the keys in SLUICEGATE_API_KEYS or [server] api_keys.",
                "invalid_request_error",
                "invalid_api_key",
            )


def _json(status: int, payload: object, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, orjson.dumps(payload), headers or [])


def _key_rest_seconds(status: int, retry_after: str | None) -> float:
    """How long a key rests after the upstream answered ``status`` to it."""
    if status != 429:
        return DEFAULT_AUTH_COOLDOWN
    seconds = retry_after_seconds(retry_after)
    return DEFAULT_RATE_LIMIT_COOLDOWN if seconds is None else seconds


_BROKEN_STATUS = {
    "upstream_idle_timeout": 504,
    "upstream_timeout": 504,
    "upstream_connection_error": 502,
}


def _broken_stream(route: Route, exc: Exception) -> tuple[str, str, str]:
    """Message, type and code for an answer that broke off while it streamed."""
    name, timeouts = route.provider.name, route.provider.timeouts
    if isinstance(exc, IdleTimeout):
        return (
            f"Provider '{name}' stopped sending for longer than {timeouts.idle:g} s; "
            "the answer is incomplete. Retry.",
            "upstream_error",
            "upstream_idle_timeout",
        )
    if isinstance(exc, TotalTimeout):
        return (
            f"Provider '{name}' took longer than {timeouts.total:g} s in total; "
            "the answer is incomplete. Retry.",
            "upstream_error",
            "upstream_timeout",
        )
    return (
        f"The connection to provider '{name}' broke mid-answer; the answer is incomplete. Retry.",
        "upstream_error",
        "upstream_connection_error",
    )


def _fail_over_if_failed(transcoder: StreamTranscoder) -> None:
    """Nothing reached the client yet: an upstream error now can still go to another route."""
    error = transcoder.error
    if error:
        raise RouteFailed(GatewayError(502, error["message"], error["type"], error.get("code")))


class Gateway:
    def __init__(
        self,
        config: Config,
        pool: UpstreamPool | None = None,
        templates: TemplateResolver | None = None,
    ):
        """``templates`` resolves chat templates for native text-generation providers; by
        default the built-ins, config overrides, and the Hugging Face lookup when HF_TOKEN or
        HF_ENDPOINT is set."""
        self.config = config
        self.routes = RouteTable(config.providers, config.models)
        self.pool = pool or UpstreamPool()
        self.auth = ClientAuth(config.server.api_keys)
        self.models = ModelCatalog(self.routes, self.pool, config.server.models_cache_ttl)
        self.profiles = ModelProfiles(self.models, templates)
        self.walker = RouteWalker(self._context_window)

    async def aclose(self) -> None:
        await self.pool.aclose()
        await self.profiles.aclose()

    async def handle(self, request: Request) -> Response | StreamingResponse:
        methods = _ROUTES.get(request.path)
        if methods is None:
            raise GatewayError(
                404,
                f"Unknown path '{request.path}'. sluicegate serves POST /v1/chat/completions, "
                "POST /v1/embeddings, GET /v1/models and GET /healthz.",
                "invalid_request_error",
                "unknown_url",
            )
        if request.method not in methods:
            allowed = ", ".join(sorted(methods))
            raise GatewayError(
                405,
                f"{request.path} does not accept {request.method}; use {allowed}.",
                "invalid_request_error",
                "method_not_allowed",
                headers=(("allow", allowed),),
            )
        if request.path == "/healthz":
            return _json(200, {"status": "ok"})
        self.auth.check(request)
        if request.path == "/v1/models":
            return Response(200, await self.models.listing())
        if request.path == "/v1/embeddings":
            return await self.embeddings(request)
        return await self.chat_completions(request)

    async def chat_completions(self, request: Request) -> Response | StreamingResponse:
        chat = parse_chat_request(request.body)
        routes = self.routes.candidates(chat.model, chat.fallbacks)
        return await self.walker.walk(chat.model, routes, lambda route: self._chat_via(chat, route))

    def _context_window(self, route: Route) -> int | None:
        configured = route.provider.settings_for(route.upstream_model).context_window
        return configured or self.models.known_context_length(route.provider, route.upstream_model)

    async def _chat_via(self, chat: ChatRequest, route: Route) -> Response | StreamingResponse:
        """One attempt; raises ``RouteFailed`` when another route may still answer."""
        if route.alias is not None and route.alias.params:
            chat = replace(chat, body={**dict(route.alias.params), **chat.body})
        profile = await self.profiles.profile(route)
        try:
            key = self.routes.next_key(route.provider)
        except GatewayError as resting:  # every key of the provider is resting
            raise RouteFailed(resting) from None
        upstream_request = route.adapter.build_chat(route.provider, profile, chat, key)
        started = time.monotonic()
        try:
            exchange = await open_upstream(self.pool, route.provider, upstream_request)
        except GatewayError as unreachable:  # connect/first-byte failures: worth another route
            raise RouteFailed(unreachable) from None
        try:
            response = exchange.response
            if not response.is_success:
                failure = await self._upstream_failure(route, response, key)
                raise RouteFailed(failure.error) if failure.retryable else failure.error
            transcoder = StreamTranscoder(
                upstream_request.dialect,
                chat.model,
                response_id=f"chatcmpl-{secrets.token_hex(12)}",
                created=int(time.time()),
                stream=chat.stream,
                include_usage=chat.include_usage,
                **upstream_request.transcoder,
            )
            if not chat.stream:
                try:
                    body = await self._read_whole(route, response)
                except GatewayError as broken:
                    raise RouteFailed(broken) from None
                transcoder.feed(body)
                answer = transcoder.finish()
            else:
                chunks = BodyChunks(response, route.provider.timeouts)
                answer = await self._until_first_content(route, transcoder, chunks)
            # An error fails over unless a stream already has content for the client: then
            # the error goes out as the stream's last event.
            if transcoder.error and not (chat.stream and transcoder.content_emitted):
                self._log_done(chat, route, transcoder, started)
                _fail_over_if_failed(transcoder)
        except BaseException:
            await exchange.aclose()
            raise
        # From here the server owns the exchange: it runs ``after`` once the answer went out.
        after = partial(self._after_answer, chat, route, exchange, transcoder, started)
        if not chat.stream:
            return Response(200, answer, after=after)
        relay = self._relay(route, transcoder, chunks)
        return StreamingResponse(200, relay, first=answer, after=after)

    async def _until_first_content(
        self, route: Route, transcoder: StreamTranscoder, chunks: AsyncIterator[bytes]
    ) -> bytes:
        """Read the stream until the answer shows its first content (or ends), before anything
        goes to the client: until then, a failure can still go to the next route."""
        head = bytearray()
        try:
            async for chunk in chunks:
                head += transcoder.feed(chunk)
                if transcoder.content_emitted or transcoder.done:
                    return bytes(head)
        except (IdleTimeout, TotalTimeout, httpx.TransportError) as exc:
            message, type_, code = _broken_stream(route, exc)
            raise RouteFailed(GatewayError(_BROKEN_STATUS[code], message, type_, code)) from None
        head += transcoder.finish()
        return bytes(head)

    async def embeddings(self, request: Request) -> Response:
        wanted = parse_embeddings_request(request.body)
        route = self.routes.resolve(wanted.model)
        profile = await self.profiles.profile(route, chat=False)
        key = self.routes.next_key(route.provider)
        upstream_request = route.adapter.build_embeddings(route.provider, profile, wanted, key)
        exchange = await open_upstream(self.pool, route.provider, upstream_request)
        try:
            if not exchange.response.is_success:
                raise (await self._upstream_failure(route, exchange.response, key)).error
            body = await self._read_whole(route, exchange.response)
        finally:
            await exchange.aclose()
        assert route.adapter.read_embeddings is not None
        return Response(200, route.adapter.read_embeddings(wanted, body))

    async def _upstream_failure(
        self, route: Route, response: httpx.Response, key: str | None
    ) -> UpstreamFailure:
        """What an upstream's error answer means for the client (a key it names rests)."""
        try:
            body = await read_body(response, MAX_ERROR_BODY_BYTES, route.provider.timeouts)
        except (GatewayError, IdleTimeout, TotalTimeout, httpx.TransportError):
            body = b""
        status = response.status_code
        retry_after = response.headers.get("retry-after")
        failure = route.adapter.classify_error(route.provider, status, body, retry_after)
        rested = ""
        if key is not None and status in (401, 403, 429):
            seconds = _key_rest_seconds(status, retry_after)
            reason = "rate_limited" if status == 429 else "refused"
            if self.routes.rest_key(route.provider, key, seconds, reason):
                rested = f"; {key_fingerprint(key)} rests {seconds:g} s"
        log.warning(
            "provider %s answered HTTP %d for %s → %d %s%s",
            route.provider.name,
            status,
            route.upstream_model,
            failure.error.status,
            failure.error.code,
            rested,
        )
        return failure

    async def _read_whole(self, route: Route, response: httpx.Response) -> bytes:
        name = route.provider.name
        try:
            return await read_body(response, MAX_JSON_BODY_BYTES, route.provider.timeouts)
        except (IdleTimeout, TotalTimeout) as exc:
            what = "stopped sending" if isinstance(exc, IdleTimeout) else "took too long"
            raise GatewayError(
                504,
                f"Provider '{name}' {what} before the answer was complete. Retry the request.",
                "upstream_error",
                "upstream_timeout",
            ) from None
        except httpx.TransportError:
            raise GatewayError(
                502,
                f"The connection to provider '{name}' broke before the answer was complete. "
                "Retry the request.",
                "upstream_error",
                "upstream_connection_error",
            ) from None

    async def _relay(
        self, route: Route, transcoder: StreamTranscoder, chunks: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """Upstream bytes → transcoder → client, one write per upstream read, after what the
        transcoder produced while the first content was awaited (the response's ``first``)."""
        if transcoder.done:
            return
        try:
            async for chunk in chunks:
                out = transcoder.feed(chunk)
                if out:
                    yield out
                if transcoder.done:
                    break
        except (IdleTimeout, TotalTimeout, httpx.TransportError) as exc:
            yield transcoder.abort(*_broken_stream(route, exc))
        tail = transcoder.finish()
        if tail:
            yield tail

    async def _after_answer(
        self,
        chat: ChatRequest,
        route: Route,
        exchange: UpstreamExchange,
        transcoder: StreamTranscoder,
        started: float,
    ) -> None:
        """Once the answer went out (the server runs this off the client's clock): the upstream
        connection goes back (or is closed, if the client left mid-answer), and the log line."""
        answered = transcoder.done
        if not answered:  # the client went away: end it so usage is still counted
            transcoder.abort(
                "The client went away before the answer was complete.",
                "client_error",
                "client_disconnected",
            )
        await exchange.aclose(answered=answered)
        self._log_done(chat, route, transcoder, started)

    def _log_done(
        self, chat: ChatRequest, route: Route, transcoder: StreamTranscoder, started: float
    ) -> None:
        usage = transcoder.usage or {}
        error = transcoder.error
        extra = ""
        if usage.get("estimated"):
            extra += " usage=estimated"
        if usage.get("estimated_cost") is not None:
            extra += f" cost_usd={usage['estimated_cost']}"
        if error:
            extra += f" error={error.get('code')}"
        log.info(
            "chat model=%s provider=%s stream=%s finish=%s prompt_tokens=%s "
            "completion_tokens=%s%s ms=%.1f",
            chat.model,
            route.provider.name,
            chat.stream,
            transcoder.finish_reason,
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            extra,
            (time.monotonic() - started) * 1000,
        )


async def serve_gateway(
    gateway: Gateway,
    host: str,
    port: int,
    *,
    shutdown: trio.Event | None = None,
    reuse_port: bool = False,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``gateway`` on ``host:port`` until cancelled or ``shutdown`` is set."""
    s = gateway.config.server
    limits = ServerLimits(
        max_body_bytes=s.max_body_bytes,
        max_header_bytes=s.max_header_bytes,
        header_timeout=s.header_timeout,
        keepalive_timeout=s.keepalive_timeout,
        shutdown_grace=s.shutdown_grace,
    )
    try:
        await serve(
            gateway.handle,
            host,
            port,
            limits=limits,
            shutdown=shutdown,
            reuse_port=reuse_port,
            task_status=task_status,
        )
    finally:
        with trio.CancelScope(shield=True):
            await gateway.aclose()
