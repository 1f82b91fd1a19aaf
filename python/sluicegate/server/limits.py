"""Bounds on what one client may cost the server (bytes, time)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_body_bytes: int = 16 * 1024 * 1024  # -> 413
    max_header_bytes: int = 64 * 1024  # -> 431
    header_timeout: float = 10.0  # request line + headers must arrive within this -> 408
    body_timeout: float = 60.0  # the whole body must arrive within this -> 408
    keepalive_timeout: float = 75.0  # idle keep-alive connection closed silently
    shutdown_grace: float = 30.0  # in-flight responses may finish within this after shutdown
