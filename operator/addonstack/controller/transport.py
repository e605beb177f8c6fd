"""The operator's HTTP transport: lightkube's requests sent through aiohttp instead of httpcore.

lightkube builds every request with httpx and hands it to a transport. httpx's own transport (httpcore over
anyio's TLS streams, h11 in pure Python) was about a third of the operator's CPU in a burst of new stacks
(py-spy, docs/performance.md), and the burst's throughput against a raw client is bounded by the two cores
the whole control plane shares. aiohttp, which kopf already brings, parses HTTP in C (llhttp) on asyncio's own
transports: the same 3,000 applies and GETs of ConfigMaps cost the client 40 % less CPU through it, and the
operator's CPU for a burst of 200 stacks fell from 44-53 to 37-40 CPU-seconds (bench/clients.py,
bench/operator.py --rounds; eleventh session).

Everything above the transport stays lightkube's and httpx's: URLs, authentication flows (tokens, exec plugins,
the re-read of a rotated service-account token), models, errors. Only the bytes on the wire move here:

- the TLS context is the one lightkube derives from the kubeconfig (CA, client certificate);
- a watch (``watch=true``) streams its body; any other answer is read whole and handed over as bytes;
- aiohttp's errors become httpx's (``ConnectError``, ``ReadError``, ``ReadTimeout``...), so lightkube's
  watch, the retries and the CLI's error messages see what they saw before;
- timeouts are httpx's per request (lightkube's 10 s, no read timeout on a watch);
- the URL goes out as httpx encoded it (yarl would otherwise quote a label selector again).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
from lightkube import AsyncClient
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ConfigError
from yarl import URL

httpx: Any = getattr(client_adapter, "httpx")  # noqa: B009  (httpx or httpx2, by lightkube version)

POOL_LIMIT = 100  # connections to the API server at once, as httpx's default pool


def kube_client(kubeconfig: str | None, limit: int = POOL_LIMIT, **kwargs: Any) -> AsyncClient:
    """lightkube's AsyncClient for a kubeconfig file (None: the pod's service account, or the environment's
    config) over this transport; ``kwargs`` go to the client (``field_manager``)."""
    config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
    return AsyncClient(config, transport=AiohttpTransport(tls_context(config), limit), **kwargs)


def tls_context(config: KubeConfig) -> ssl.SSLContext:
    """The TLS settings lightkube would give httpx for this kubeconfig's current context."""
    single = config.get()
    if single is None or single.user is None:  # lightkube's own error, which the CLI explains (cli/kube_errors.py)
        raise ConfigError("the kubeconfig names no current context with a user")
    return client_adapter.verify_cluster(single.cluster, single.user, single.abs_file)


@contextmanager
def _as_httpx_errors(request: Any) -> Iterator[None]:
    """aiohttp's and asyncio's errors as the httpx errors lightkube and callers expect."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ClientOSError) as exc:
        raise httpx.ReadError(str(exc), request=request) from exc
    except aiohttp.ClientError as exc:
        raise httpx.TransportError(str(exc), request=request) from exc


class _Stream(httpx.AsyncByteStream):  # type: ignore[misc]
    """A watch's body, chunk by chunk as the server flushes events; closing it drops the connection."""

    def __init__(self, response: aiohttp.ClientResponse, request: Any) -> None:
        self.response = response
        self.request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors(self.request):
            async for chunk in self.response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self.response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):  # type: ignore[misc]
    """An httpx transport over one aiohttp session, opened on the first request (it needs the running loop)."""

    def __init__(self, tls: ssl.SSLContext | None, limit: int = POOL_LIMIT) -> None:
        self.tls = tls
        self.limit = limit  # 0: no bound (the watch streams each hold a connection)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.tls if self.tls is not None else False, limit=self.limit)
            # httpx has set every header (Host, User-Agent, Accept-Encoding...) and decodes the body itself. It also
            # routes a request through an HTTPS_PROXY of the environment, to its own transport; aiohttp's trust_env
            # would read ~/.netrc and the proxy variables again for every request, in a thread.
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False)
        return self._session

    async def handle_async_request(self, request: Any) -> Any:
        timeout = request.extensions.get("timeout") or {}
        body = await request.aread()
        with _as_httpx_errors(request):
            response = await self._open().request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        headers = list(response.raw_headers)
        if b"watch=true" in request.url.query:  # lightkube's watch (the query as bytes: no parse per request)
            return httpx.Response(response.status, headers=headers, stream=_Stream(response, request))
        try:
            with _as_httpx_errors(request):
                content = await response.read()
        finally:
            response.release()
        return httpx.Response(response.status, headers=headers, content=content)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
