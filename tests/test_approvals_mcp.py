"""`hlcon mcp` driven by the official SDK's stdio client, against real podman: the tools it
lists (none approves, denies, grants or acknowledges), reads, a proposal that leaves the
container untouched until a person approves it, and the verified outcome the client then sees."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent

from lab.config import Config, ConsoleConfig, LocalConfig
from lab.wiring import Lab
from tests.testbed.podman import IMAGE, LabContainers, idle_command, podman
from watch.approvals import Queue

pytestmark = pytest.mark.testbed
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def box(lab_containers: LabContainers) -> Iterator[str]:
    name = "appr-mcp"
    podman(lab_containers.env, "rm", "-f", "--ignore", name)
    podman(lab_containers.env, "run", "-d", "--name", name, IMAGE, *idle_command())
    yield name
    podman(lab_containers.env, "rm", "-f", "--ignore", name)


def write_config(tmp: Path, url: str) -> Path:
    path = tmp / "config.toml"
    path.write_text(
        f'[console]\nstate_dir = "{tmp / "state"}"\naudit_log = "{tmp / "audit.jsonl"}"\n'
        f'[local]\ncontainers = "{url}"\n'
    )
    return path


@asynccontextmanager
async def mcp_session(config: Path) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tui.cli", "--config", str(config), "mcp"],
        env=dict(os.environ),
        cwd=str(ROOT),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def data(result: CallToolResult) -> Any:
    assert not result.isError, result.content
    if result.structuredContent is not None:
        content = result.structuredContent
        return content["result"] if set(content) == {"result"} else content
    (first,) = result.content
    assert isinstance(first, TextContent)
    return json.loads(first.text)


def started_at(env: dict[str, str], name: str) -> str:
    return podman(env, "inspect", "--format", "{{.State.StartedAt}}", name).strip()


async def test_an_assistant_proposes_a_person_approves_the_assistant_sees_the_outcome(
    lab_containers: LabContainers, tmp_path: Path, box: str
) -> None:
    env = lab_containers.env
    config_path = write_config(tmp_path, lab_containers.url)
    before = started_at(env, box)
    async with mcp_session(config_path) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == {"status", "audit_tail", "plan", "propose", "request_status"}
        for word in ("approve", "deny", "grant", "ack", "policy", "secret"):
            assert not any(word in name for name in tools), word
        for name in ("status", "audit_tail", "plan", "request_status"):
            annotations = tools[name].annotations
            assert annotations is not None and annotations.readOnlyHint is True, name
        propose_notes = tools["propose"].annotations
        assert propose_notes is not None and propose_notes.readOnlyHint is False

        status = data(await session.call_tool("status", {}))
        assert isinstance(status["findings"], list)
        assert any(box in json.dumps(e) for e in status["entries"])  # the reading names it

        dry = data(
            await session.call_tool("plan", {"verb": "restart", "target": f"container:{box}"})
        )
        assert "restart" in dry["text"] and dry["plan"]["target"] == f"container:{box}@local"

        proposed = data(
            await session.call_tool(
                "propose",
                {"verb": "restart", "target": f"container:{box}", "reason": "it is stuck"},
            )
        )
        rid = proposed["id"]
        assert proposed["state"] == "waiting" and len(proposed["plan_hash"]) == 64
        assert proposed["blast_radius"] == "single" and proposed["expires"]
        assert proposed["client"].startswith("mcp:")
        assert started_at(env, box) == before  # untouched until a person approves
        waiting = data(await session.call_tool("request_status", {"id": rid, "wait": "0s"}))
        assert waiting["state"] == "waiting" and waiting["outcome"] is None

        # A person approves, through the function `hlcon approve` calls at their terminal.
        lab = Lab(
            Config(
                console=ConsoleConfig(
                    state_dir=tmp_path / "state", audit_log=tmp_path / "audit.jsonl"
                ),
                local=LocalConfig(containers=lab_containers.url),
            )
        )
        try:
            decision = await Queue(lab).approve(rid, answer="y", channel="test (a person)")
        finally:
            await lab.close()
        assert decision.result is not None and decision.result.ok, decision.message
        assert started_at(env, box) != before

        done = data(await session.call_tool("request_status", {"id": rid, "wait": "5s"}))
        assert done["state"] == "done" and done["outcome"]["ok"] is True

        tail = data(await session.call_tool("audit_tail", {"n": 50}))
    by_seq = {r["seq"]: r for r in tail}
    proposed_rec = next(r for r in tail if r["phase"] == "proposed")
    approved = next(r for r in tail if r["phase"] == "approved")
    assert by_seq[proposed_rec["ref"]]["phase"] == "planned"
    assert approved["ref"] == proposed_rec["seq"] and approved["result"]["request"] == rid
    planned = approved["result"]["planned"]
    assert by_seq[planned]["phase"] == "planned"
    assert [r["phase"] for r in tail if r.get("ref") == planned] == ["intent", "outcome"]
    assert by_seq[planned]["who"]["uid"] == os.getuid()


async def test_a_refused_proposal_and_a_bad_id_are_answers_not_crashes(
    lab_containers: LabContainers, tmp_path: Path
) -> None:
    config_path = write_config(tmp_path, lab_containers.url)
    async with mcp_session(config_path) as session:
        refused = data(
            await session.call_tool(
                "propose", {"verb": "restart", "target": "container:no-such", "reason": "x"}
            )
        )
        assert refused["state"] == "refused" and "no-such" in refused["refused"]
        bad = await session.call_tool("request_status", {"id": "r-00000000"})
        assert bad.isError and "no request r-00000000" in str(bad.content)
