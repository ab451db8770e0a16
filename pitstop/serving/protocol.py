"""The HTTP/1.1 connection protocol of the workers: uvicorn's httptools protocol plus client limits.

uvicorn closes a keep-alive connection that stays idle ``timeout_keep_alive`` seconds after a
response, but it has no limit on how long a client may take to send a request: a connection that
never sends anything, or sends its headers or body one byte at a time (slowloris), is held open
forever, and httptools puts no bound on the size of a request head. This protocol adds both:

  * **client timeout**: a request (head and body) must be completely received within
    ``client_timeout`` seconds of the connection opening, or of the previous response on a
    keep-alive connection; past it the connection is closed (an application waiting for the rest
    of the body sees ``http.disconnect``).
  * **head size**: a request head larger than ``max_header_bytes`` is answered 431 and closed.

The idle keep-alive limit (``serving.keepalive``) still applies and is usually the shorter one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pitstop.log import get_logger

__all__ = ["ClientLimitsProtocol", "protocol_class"]

log = get_logger(__name__)

_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
              b"content-length: 32\r\nconnection: close\r\n\r\nrequest header fields too large\n")


class _HeadTooLargeError(Exception):
    """Raised inside the parser's callbacks to stop parsing an oversized request head."""


class ClientLimitsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with a deadline for receiving each request and a bound on its head size."""

    client_timeout: float = 10.0
    max_header_bytes: int = 65_536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client_timer: asyncio.TimerHandle | None = None
        self._in_head = True
        self._head_bytes = 0  # bytes received while the current head was incomplete
        self._head_size = 0  # request line and header bytes parsed so far
        self._too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
            self._refuse_head()

    def on_message_begin(self) -> None:
        self._head_size = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.max_header_bytes:
            self._too_large = True
            raise _HeadTooLargeError  # the parser stops; uvicorn answers through send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self._disarm()
        self.transport.write(_TOO_LARGE)
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._client_timer = self.loop.call_later(self.client_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._client_timer is not None:
            self._client_timer.cancel()
            self._client_timer = None

    def _too_slow(self) -> None:
        self._client_timer = None
        if not self.transport.is_closing():
            log.debug("closing a connection from %s: no complete request within %s s", self.client,
                      self.client_timeout)
            self.transport.close()


def protocol_class(client_timeout: float, max_header_bytes: int) -> type[ClientLimitsProtocol]:
    """A ``ClientLimitsProtocol`` subclass with these limits (uvicorn instantiates the class itself)."""
    return type("ConfiguredClientLimitsProtocol", (ClientLimitsProtocol,),
                {"client_timeout": client_timeout, "max_header_bytes": max_header_bytes})
