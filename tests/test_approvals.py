"""The approval queue (watch.approvals) against real podman: a proposal changes nothing until a
person approves; approving re-plans and runs through the runner; deny, expiry and plan drift."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from actions.runner import Refused
from lab.config import Config, ConsoleConfig, LocalConfig
from lab.wiring import Lab
from tests.testbed.podman import IMAGE, LabContainers, idle_command, podman
from watch.approvals import DENIED, DONE, EXPIRED, WAITING, Queue, QueueError

pytestmark = pytest.mark.testbed


def make_lab(url: str, tmp: Path) -> Lab:
    config = Config(
        console=ConsoleConfig(state_dir=tmp / "state", audit_log=tmp / "audit.jsonl"),
        local=LocalConfig(containers=url),
    )
    return Lab(config)


@pytest.fixture
async def lab(lab_containers: LabContainers, tmp_path: Path) -> AsyncIterator[Lab]:
    made = make_lab(lab_containers.url, tmp_path)
    yield made
    await made.close()


@pytest.fixture
def box(lab_containers: LabContainers, request: pytest.FixtureRequest) -> Iterator[str]:
    """A container of this test's own, removed afterwards."""
    name = f"appr-{request.node.name[-20:].replace('_', '-').strip('-')}"
    env = lab_containers.env
    podman(env, "rm", "-f", "--ignore", name)
    podman(env, "run", "-d", "--name", name, IMAGE, *idle_command())
    yield name
    podman(env, "rm", "-f", "--ignore", name)


def started_at(env: dict[str, str], name: str) -> str:
    return podman(env, "inspect", "--format", "{{.State.StartedAt}}", name).strip()


def records(lab: Lab) -> list[dict[str, object]]:
    path = lab.config.console.audit_log
    assert path is not None
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_approved_request_runs_once_and_every_record_links_to_the_proposal(
    lab_containers: LabContainers, lab: Lab, box: str
) -> None:
    env = lab_containers.env
    before = started_at(env, box)
    queue = Queue(lab)
    request = await queue.propose(
        "restart", f"container:{box}@local", {}, reason="stuck", client="test-client"
    )
    assert request.state == WAITING and len(request.plan_hash) == 64
    assert request.client == "test-client" and request.who["uid"] is not None
    assert started_at(env, box) == before  # a proposal changes nothing
    # A second process sees it (the state directory, not memory).
    assert [r.id for r in Queue(lab).list()] == [request.id]

    decision = await Queue(lab).approve(request.id, answer="y", channel="test")
    assert decision.result is not None and decision.result.ok, decision.message
    assert decision.request.state == DONE and decision.request.outcome
    assert decision.request.outcome["ok"] is True
    assert started_at(env, box) != before
    assert Queue(lab).get(request.id).state == DONE
    with pytest.raises(QueueError, match="done, not waiting"):
        await queue.approve(request.id, answer="y", channel="test")

    recs = records(lab)
    by_seq = {r["seq"]: r for r in recs}
    proposed = next(r for r in recs if r["phase"] == "proposed")
    approved = next(r for r in recs if r["phase"] == "approved")
    assert by_seq[proposed["ref"]]["phase"] == "planned"
    assert approved["ref"] == proposed["seq"]
    assert approved["result"]["request"] == request.id  # type: ignore[index]
    planned = approved["result"]["planned"]  # type: ignore[index]
    run = [r["phase"] for r in recs if r.get("ref") == planned and r["seq"] != planned]
    assert run == ["intent", "outcome"]
    assert proposed["who"]["claimed"]["CLIENT"] == "test-client"  # type: ignore[index]


async def test_denied_request_never_runs(lab_containers: LabContainers, lab: Lab, box: str) -> None:
    env = lab_containers.env
    before = started_at(env, box)
    queue = Queue(lab)
    request = await queue.propose(
        "restart", f"container:{box}", {}, reason="try", client="test-client"
    )
    denied = queue.deny(request.id, note="not now", channel="test")
    assert denied.state == DENIED and denied.note == "not now"
    with pytest.raises(QueueError, match="denied, not waiting"):
        await queue.approve(request.id, answer="y", channel="test")
    assert started_at(env, box) == before
    phases = [r["phase"] for r in records(lab)]
    assert "denied" in phases and "intent" not in phases


async def test_expired_request_is_denied_and_audited(
    lab_containers: LabContainers, lab: Lab, box: str
) -> None:
    env = lab_containers.env
    before = started_at(env, box)
    request = await Queue(lab).propose(
        "restart", f"container:{box}", {}, reason="try", client="c", expiry=60
    )
    later = Queue(lab, clock=lambda: lab.clock() + timedelta(seconds=61))
    assert later.get(request.id).state == EXPIRED
    with pytest.raises(QueueError, match="expired, not waiting"):
        await later.approve(request.id, answer="y", channel="test")
    assert started_at(env, box) == before
    expired = [r for r in records(lab) if r["phase"] == "expired"]
    assert len(expired) == 1 and expired[0]["ref"] == request.proposed_seq


async def test_plan_drift_sends_the_request_back_to_waiting(
    lab_containers: LabContainers, lab: Lab, box: str
) -> None:
    """The container is removed and a new one of the same name made: its id (in the plan's
    step) differs, so approving does not run it; it waits again with the difference."""
    env = lab_containers.env
    queue = Queue(lab)
    request = await queue.propose("restart", f"container:{box}", {}, reason="r", client="c")
    podman(env, "rm", "-f", box)
    gone = await queue.approve(request.id, answer="y", channel="test")
    assert gone.result is None and gone.request.state == WAITING
    assert gone.request.drift and "cannot be planned" in gone.message
    podman(env, "run", "-d", "--name", box, IMAGE, *idle_command())
    before = started_at(env, box)
    moved = await queue.approve(request.id, answer="y", channel="test")
    assert moved.result is None and moved.request.state == WAITING
    assert moved.request.drift and moved.request.drift["diff"]
    assert moved.request.plan_hash != request.plan_hash
    assert started_at(env, box) == before
    # Approved again, the new plan (now the request's) runs.
    ran = await queue.approve(request.id, answer="y", channel="test")
    assert ran.request.state == DONE, ran.message
    assert started_at(env, box) != before
    assert [r["phase"] for r in records(lab)].count("drifted") == 2


async def test_a_refused_proposal_is_refused_at_once_and_not_queued(lab: Lab) -> None:
    queue = Queue(lab)
    with pytest.raises(Refused):
        await queue.propose("restart", "container:no-such-box", {}, reason="r", client="c")
    assert queue.list() == []
    assert [r["phase"] for r in records(lab)] == ["refused"]
