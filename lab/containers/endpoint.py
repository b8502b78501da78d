"""Docker/Podman endpoints (the SDK client, made lazily in a thread) and where they come from.

See lab.containers for the endpoint sources (`[local] containers`, `[[containers]]`, hosts).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lab import inflight
from lab.containers.parse import JSONDict, parse_version
from lab.poller import ReadError

if TYPE_CHECKING:
    from lab.wiring import Lab

T = TypeVar("T")
UrlProvider = Callable[[], Awaitable[str]]

STATS_CONCURRENCY = 8  # parallel per-container calls (inspect, stats) on one endpoint
LIBPOD = "/v4.0.0/libpod"


def _unix_path(url: str) -> Path | None:
    if url.startswith("unix://"):
        return Path(url[len("unix://") :])
    return None


def _explain(exc: BaseException, url: str) -> ReadError:
    """A Docker SDK / requests failure → ReadError that says what and why, one line."""
    from docker import errors as docker_errors

    path = _unix_path(url)
    text = str(exc)
    if isinstance(exc, ReadError):
        return exc
    if path is not None and not path.exists():
        return ReadError("docker endpoint unreachable", f"socket {path} does not exist")
    if isinstance(exc, PermissionError) or "Permission denied" in text:
        return ReadError(
            "docker endpoint refused",
            f"permission denied on {path or url} (is the user in the docker group?)",
        )
    if isinstance(exc, docker_errors.NotFound):
        return ReadError("not found", getattr(exc, "explanation", None) or text)
    if isinstance(exc, docker_errors.APIError):
        return ReadError("docker API error", (getattr(exc, "explanation", None) or text)[:300])
    if "Connection refused" in text or "No such file" in text:
        return ReadError("docker endpoint unreachable", f"connection refused at {url}")
    if isinstance(exc, TimeoutError) or "timed out" in text.lower():
        return ReadError("docker endpoint timed out", f"no answer from {url}")
    if isinstance(exc, ValueError | KeyError | TypeError):
        return ReadError("not a Docker API", f"{url} answered something else: {text[:200]}")
    first = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
    return ReadError("docker endpoint failed", f"{url}: {first}")


class DockerEndpoint:
    """One Docker/Podman API. The client is made lazily, in a thread, and reused; a connection
    failure drops it, so the next call makes a new one (asking the url_provider again)."""

    def __init__(
        self,
        name: str,
        url: str | None = None,
        *,
        url_provider: UrlProvider | None = None,
        timeout: float = 10.0,
        concurrency: int = STATS_CONCURRENCY,
    ) -> None:
        if (url is None) == (url_provider is None):
            raise ValueError("DockerEndpoint needs exactly one of url and url_provider")
        self.name = name
        self._url = url
        self._url_provider = url_provider
        self.timeout = timeout
        self._client: Any = None
        self._client_url = url or ""
        self._lock = asyncio.Lock()
        self.limit = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self.engine: str | None = None
        self.api_version: str | None = None
        self.is_podman = False
        self.on_close: list[Callable[[], Awaitable[None]]] = []  # streams to end with it

    def __repr__(self) -> str:
        return f"DockerEndpoint({self.name!r}, {self._client_url or '<provider>'!r})"

    @property
    def url(self) -> str:
        """The URL in use (or last used); "" before the first connection via a provider."""
        return self._client_url

    async def resolve_url(self) -> str:
        if self._url is not None:
            return self._url
        assert self._url_provider is not None
        try:
            return await self._url_provider()
        except ReadError:
            raise
        except Exception as exc:
            raise ReadError(
                "docker endpoint unreachable", f"no URL for {self.name}: {exc}"
            ) from exc

    async def client(self) -> Any:
        """The docker.DockerClient, made on first use (in a thread: it connects)."""
        if self._client is not None:
            return self._client
        async with self._lock:
            made: Any = self._client  # another task may have made it while we waited
            if made is not None:
                return made
            url = await self.resolve_url()
            self._client_url = url
            path = _unix_path(url)
            if path is not None and not path.exists():
                raise ReadError("docker endpoint unreachable", f"socket {path} does not exist")
            try:
                client, version = await inflight.to_thread(self._connect, url)
            except Exception as exc:
                raise _explain(exc, url) from exc
            try:
                self.engine, self.api_version, self.is_podman = parse_version(version)
            except ValueError as exc:
                await asyncio.to_thread(client.close)
                raise ReadError("not a Docker API", f"{url}: {exc}") from exc
            self._client = client
            return client

    def _connect(self, url: str) -> tuple[Any, JSONDict]:
        import docker

        # requests takes the float as it is; int() made a sub-second console.timeout 0 (refused)
        client = docker.DockerClient(
            base_url=url,
            timeout=self.timeout,  # type: ignore[arg-type]  # the stubs say int
            max_pool_size=self.concurrency + 2,
        )
        try:
            version = client.api.version()
        except Exception:
            client.close()
            raise
        return client, version

    async def call(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(client.api)` in a thread; failures become ReadError (and drop a client
        whose connection failed)."""
        client = await self.client()
        try:
            # tracked: a runner that times out waits for the engine call before it unlocks
            return await inflight.to_thread(fn, client.api)
        except Exception as exc:
            err = _explain(exc, self._client_url)
            if err.what in ("docker endpoint unreachable", "docker endpoint timed out"):
                await self._drop()
            raise err from exc

    async def limited(self, fn: Callable[[Any], T]) -> T:
        """`call` within the endpoint's concurrency bound (for per-container calls)."""
        async with self.limit:
            return await self.call(fn)

    async def libpod(self, path: str, **params: str) -> Any:
        """GET a libpod API path (podman only), JSON-decoded."""

        def get(api: Any) -> Any:
            res = api.get(f"{api.base_url}{LIBPOD}{path}", params=params)
            api._raise_for_status(res)
            return res.json()

        return await self.call(get)

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.close)

    async def aclose(self) -> None:
        for stop in list(self.on_close):
            with contextlib.suppress(Exception):
                await stop()
        await self._drop()


# ---------------------------------------------------------------- endpoint discovery


def auto_candidates(environ: Mapping[str, str] | None = None) -> list[str]:
    """Local sockets to try, in order, for `[local] containers = "auto"`."""
    env = os.environ if environ is None else environ
    out: list[str] = []
    if env.get("DOCKER_HOST"):
        out.append(env["DOCKER_HOST"])
    out += ["unix:///var/run/docker.sock", "unix:///run/podman/podman.sock"]
    if env.get("XDG_RUNTIME_DIR"):
        out.append(f"unix://{env['XDG_RUNTIME_DIR']}/podman/podman.sock")
    return list(dict.fromkeys(out))


def _present(url: str) -> bool:
    path = _unix_path(url)
    return path is None or path.exists()


def auto_provider(candidates: Sequence[str]) -> UrlProvider:
    """The first candidate that answers /_ping (checked once per client made)."""

    def ping(url: str) -> bool:
        import docker

        try:
            client = docker.APIClient(base_url=url, version="1.24", timeout=3)
        except Exception:
            return False
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    async def provider() -> str:
        for url in candidates:
            if _present(url) and await asyncio.to_thread(ping, url):
                return url
        raise ReadError(
            "docker endpoint unreachable",
            "no local Docker or Podman API answered (tried " + ", ".join(candidates) + ")",
        )

    return provider


class ContainerEndpoints:
    """Every endpoint of a Lab by name (Lab.container_endpoints); closed with the Lab."""

    def __init__(self, endpoints: Iterable[DockerEndpoint] = ()) -> None:
        self.by_name: dict[str, DockerEndpoint] = {e.name: e for e in endpoints}

    def get(self, name: str) -> DockerEndpoint:
        try:
            return self.by_name[name]
        except KeyError:
            known = ", ".join(sorted(self.by_name)) or "none configured"
            raise LookupError(f"no container endpoint named {name!r} (known: {known})") from None

    def __iter__(self) -> Any:
        return iter(self.by_name.values())

    async def aclose(self) -> None:
        for endpoint in self.by_name.values():
            await endpoint.aclose()


def build_endpoints(lab: Lab, environ: Mapping[str, str] | None = None) -> ContainerEndpoints:
    config = lab.config
    timeout = config.console.timeout
    out: list[DockerEndpoint] = []
    local = config.local.containers.strip()
    if config.local.enabled and local and local != "none":
        if local == "auto":
            found = [u for u in auto_candidates(environ) if _present(u)]
            if found:
                out.append(
                    DockerEndpoint(
                        lab.local_name, url_provider=auto_provider(found), timeout=timeout
                    )
                )
        else:
            out.append(DockerEndpoint(lab.local_name, local, timeout=timeout))
    for entry in config.containers:
        out.append(DockerEndpoint(entry.name, entry.url, timeout=timeout))
    for host in config.hosts:
        mode = host.containers.strip()
        if mode in ("", "none"):
            continue
        if mode == "ssh":
            from lab import ssh

            provider = ssh.docker_url_provider(lab, host.name)
            out.append(DockerEndpoint(host.name, url_provider=provider, timeout=timeout))
            continue
        out.append(DockerEndpoint(host.name, mode, timeout=timeout))
    return ContainerEndpoints(out)


def endpoints(lab: Lab) -> ContainerEndpoints:
    """The lab's endpoints, made once (Lab.container_endpoints)."""
    return lab.container_endpoints
