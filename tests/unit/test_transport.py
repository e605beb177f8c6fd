"""controller/transport.py against a real HTTP server (aiohttp.web on loopback): what reaches the server is
what httpx's own transport sends, a watch streams, and aiohttp's errors arrive as httpx's. The API server
itself is behind it in every cluster test (tests/cluster), through the operator's Cluster and watch streams."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from lightkube import AsyncClient
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import ConfigMap

from addonstack.controller.transport import AiohttpTransport, httpx

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_api_server(body: dict[str, Any], status: int) -> web.Response:
    """JSON as the API server answers it: lightkube reads an error's Status only under exactly this type."""
    return web.Response(body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"})


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_the_server_sees_what_httpx_own_transport_sends() -> None:
    seen: list[tuple[str, str, list[tuple[str, str]], bytes]] = []

    async def record(request: web.Request) -> web.Response:
        headers = sorted((k.lower(), v) for k, v in request.headers.items() if k.lower() not in ("connection",))
        seen.append((request.method, request.raw_path, headers, await request.read()))
        return web.json_response({"ok": True})

    async def main() -> list[Any]:
        async with serving(record) as base:
            answers = []
            for transport in (httpx.AsyncHTTPTransport(), AiohttpTransport(None)):
                async with httpx.AsyncClient(base_url=base, transport=transport) as client:
                    params = {"labelSelector": "addonstack.io/stack,!skip,a in (b,c)", "limit": "5"}
                    headers = {"Authorization": "Bearer t0ken", "Content-Type": "application/apply-patch+yaml"}
                    resp = await client.patch("/api/v1/namespaces/a%2Fb/configmaps/x", params=params,
                                              headers=headers, content=b'{"kind":"ConfigMap"}')  # fmt: skip
                    answers.append((resp.status_code, resp.json()))
            return answers

    answers = run(main())
    assert answers == [(200, {"ok": True})] * 2
    assert len(seen) == 2
    assert seen[1] == seen[0], "the aiohttp transport changed the request on the wire"
    assert "labelSelector=addonstack.io%2Fstack%2C%21skip" in seen[1][1]


def test_a_watch_streams_each_line_as_the_server_flushes_it() -> None:
    release = asyncio.Event()

    async def watch(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b'{"type":"ADDED","object":{"n":1}}\n')
        await release.wait()  # the second line only after the client has the first
        await resp.write(b'{"type":"MODIFIED","object":{"n":2}}\n')
        await resp.write_eof()
        return resp

    async def main() -> list[str]:
        lines = []
        async with (
            serving(watch) as base,
            httpx.AsyncClient(base_url=base, transport=AiohttpTransport(None, limit=0)) as client,
            client.stream("GET", "/api/v1/configmaps", params={"watch": "true"}) as resp,
        ):
            async for line in resp.aiter_lines():
                lines.append(line)
                release.set()
        return lines

    assert [json.loads(x)["type"] for x in run(main())] == ["ADDED", "MODIFIED"]


def test_a_gzip_answer_is_decoded_as_httpx_decodes_it() -> None:
    body = json.dumps({"items": ["x"] * 1000}).encode()

    async def zipped(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(body), headers={"Content-Encoding": "gzip"},
                            content_type="application/json")  # fmt: skip

    async def main() -> Any:
        async with (
            serving(zipped) as base,
            httpx.AsyncClient(base_url=base, transport=AiohttpTransport(None)) as client,
        ):
            return (await client.get("/apis")).json()

    assert run(main()) == json.loads(body)


def test_errors_arrive_as_httpx_errors() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(text="late")

    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b'{"type":"ADDED"}\n')
        assert request.transport is not None
        request.transport.close()  # the connection drops in the middle of the body
        return resp

    async def main() -> list[type[BaseException]]:
        raised: list[type[BaseException]] = []
        transport = AiohttpTransport(None)
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(0.3)) as client:
            try:
                await client.get(f"http://127.0.0.1:{free_port()}/api")
            except httpx.TransportError as exc:
                raised.append(type(exc))
            async with serving(slow) as base:
                try:
                    await client.get(f"{base}/api")
                except httpx.TransportError as exc:
                    raised.append(type(exc))
            async with serving(cut) as base:
                try:
                    async with client.stream("GET", f"{base}/api", params={"watch": "true"}) as resp:
                        async for _ in resp.aiter_lines():
                            pass
                except httpx.TransportError as exc:
                    raised.append(type(exc))
        return raised

    connect, timeout, dropped = run(main())
    assert issubclass(connect, httpx.ConnectError)
    assert issubclass(timeout, httpx.ReadTimeout)
    assert issubclass(dropped, (httpx.ReadError, httpx.RemoteProtocolError))


def test_lightkube_reads_api_errors_and_models_through_it(tmp_path: Any) -> None:
    async def api(request: web.Request) -> web.Response:
        if request.match_info["tail"].endswith("configmaps/missing"):
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                      "message": 'configmaps "missing" not found', "code": 404}  # fmt: skip
            return as_api_server(status, 404)
        assert request.headers["Authorization"] == "Bearer s3cret"
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ns"}, "data": {"k": "v"}}
        return as_api_server(cm, 200)

    async def main() -> tuple[Any, int]:
        async with serving(api) as base:
            kubeconfig = tmp_path / "kubeconfig"
            kubeconfig.write_text(json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": base}}],
                "users": [{"name": "u", "user": {"token": "s3cret"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            }))  # fmt: skip
            client = AsyncClient(KubeConfig.from_file(str(kubeconfig)), transport=AiohttpTransport(None))
            try:
                cm = await client.get(ConfigMap, "x", namespace="ns")
                with pytest.raises(ApiError) as missing:
                    await client.get(ConfigMap, "missing", namespace="ns")
            finally:
                await client.close()
            return cm, missing.value.status.code

    cm, code = run(main())
    assert cm.data == {"k": "v"}
    assert code == 404


def test_a_kubeconfig_without_a_user_is_lightkubes_config_error() -> None:
    """The CLI explains lightkube's ConfigError (cli/kube_errors.py); anything else would reach it raw."""
    from lightkube.core.exceptions import ConfigError

    from addonstack.cli.kube_errors import explain
    from addonstack.controller.transport import tls_context

    config = KubeConfig.from_dict({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c"}}],
    })  # fmt: skip
    with pytest.raises(ConfigError) as raised:
        tls_context(config)
    assert "no usable kubeconfig" in (explain(raised.value) or "")
