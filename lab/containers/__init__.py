"""Containers: Docker and Podman endpoints read through the Docker SDK (which blocks: every call
runs in a thread via asyncio.to_thread, never on the event loop).

Endpoints
---------
`DockerEndpoint(name, url)` or `DockerEndpoint(name, url_provider=fn)`:

- `url` is fixed: "unix:///run/podman/podman.sock", "tcp://10.0.0.5:2375".
- `url_provider` is an `async () -> str` called whenever a client must be (re)made; lab.ssh uses
  it to hand over the URL of a remote socket forwarded over SSH (the forward may move between
  reconnects, so the URL is asked for again after a connection failure). lab.ssh may expose
  `docker_url_provider(lab, host) -> UrlProvider`; hosts with `containers = "ssh"` get an
  endpoint only once it exists.

Where endpoints come from (`endpoints(lab)`, made once per Lab and shared by the reader, the
actions and the logs screen): `[local] containers` ("auto": $DOCKER_HOST, /var/run/docker.sock,
/run/podman/podman.sock, $XDG_RUNTIME_DIR/podman/podman.sock, the first that answers; "none";
or a URL), every `[[containers]]` entry, and `[[hosts]]` whose `containers` is a URL or "ssh".

Reading
-------
Pure functions turn the engine's JSON into readings (`parse_container`, `parse_stats`,
`cpu_percent`, `parse_version`); tests feed them JSON captured from real podman
(tests/data/containers/). A full refresh costs, on podman, two calls (the libpod list and the
libpod stats of every container in one answer) plus an inspect of each container whose state
changed since it was last inspected; on Docker, a list, inspects of changed containers and one
`stats(one_shot=True)` per running container (bounded concurrency). CPU % comes from the counters
of the previous reading (the engine's own two-sample stats would cost a 1 s wait).

Layout
------
parse.py (pure: JSON → readings), endpoint.py (DockerEndpoint, endpoint discovery),
reader.py (ContainersReader, EventWatch), logs.py (lookups by name, logs). This face re-exports
every public name, so `from lab.containers import X` works as it did when this was one module.
"""

from __future__ import annotations

from lab.containers.endpoint import (
    LIBPOD,
    STATS_CONCURRENCY,
    ContainerEndpoints,
    DockerEndpoint,
    T,
    UrlProvider,
    auto_candidates,
    auto_provider,
    build_endpoints,
    endpoints,
)
from lab.containers.logs import LogBuffer, find_container, follow_logs, list_names, tail_logs
from lab.containers.parse import (
    DOMAIN,
    JSONDict,
    StatsSample,
    cpu_percent,
    describe_status,
    json_kind,
    match_names,
    objects,
    parse_container,
    parse_stats,
    parse_time,
    parse_version,
    split_log_lines,
    summary_key,
)
from lab.containers.reader import (
    FULL_READ_EVERY,
    INSPECT_MAX_AGE,
    ContainersReader,
    EventWatch,
    readers,
)

__all__ = [
    "DOMAIN",
    "FULL_READ_EVERY",
    "INSPECT_MAX_AGE",
    "LIBPOD",
    "STATS_CONCURRENCY",
    "ContainerEndpoints",
    "ContainersReader",
    "DockerEndpoint",
    "EventWatch",
    "JSONDict",
    "LogBuffer",
    "StatsSample",
    "T",
    "UrlProvider",
    "auto_candidates",
    "auto_provider",
    "build_endpoints",
    "cpu_percent",
    "describe_status",
    "endpoints",
    "find_container",
    "follow_logs",
    "json_kind",
    "list_names",
    "match_names",
    "objects",
    "parse_container",
    "parse_stats",
    "parse_time",
    "parse_version",
    "readers",
    "split_log_lines",
    "summary_key",
    "tail_logs",
]
