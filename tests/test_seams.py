"""The seams: servers answer through policies, components plug in, layers stay apart."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import sim
from sim.config import parse_scenario
from sim.config.nodes import NODE_KINDS, NODE_TYPES, MXNode
from sim.core.component import REGISTRY, registers
from sim.core.counting import CountingEnvironment
from sim.core.records import Message
from sim.mail.concurrency import Destination
from sim.mail.retry import PostfixBackoff
from sim.mail.smtp import Phase, Reply
from tests.conftest import node, tiny, tiny_data
from tests.test_mta import burst, two_mx

ROOT = Path(__file__).resolve().parent.parent / "sim"
# Each layer may import only the layers listed (and itself).
LAYERS = {
    "config": set(),
    "core": {"config"},
    "world": {"config", "core"},
    "mail": {"config", "core", "world"},
    "simulation": {"config", "core", "world", "mail"},
    "experiment": {"config", "core", "world", "mail", "simulation"},
    "verification": {"config", "core", "world", "mail", "simulation"},  # mailflow verify's cases
    "faces": {"config", "core", "world", "mail", "simulation", "experiment", "verification"},
}


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node outside ``if TYPE_CHECKING:`` blocks (annotations may name any type)."""
    out: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def imported_layers(path: Path) -> set[str]:
    """The sim layers a module imports at run time (relative or absolute)."""
    layer = path.relative_to(ROOT).parts[0]
    found: set[str] = set()
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 2 and node.module:  # from ..mail.x import y
                found.add(node.module.split(".")[0])
            elif node.level == 2:  # from .. import mail
                found.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.startswith("sim."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("sim."))
    return found - {layer, "_version"}


def test_every_layer_imports_only_the_layers_below_it() -> None:
    for path in ROOT.rglob("*.py"):
        if path.parent == ROOT:
            continue  # the package's front door re-exports the API
        layer = path.relative_to(ROOT).parts[0]
        wrong = imported_layers(path) - LAYERS[layer]
        assert not wrong, f"{path.relative_to(ROOT)} ({layer}) imports {sorted(wrong)}"


def test_the_mta_knows_servers_only_by_protocol() -> None:
    tree = ast.parse((ROOT / "mail" / "mta.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m and m.split(".")[-1] in ("mx", "server", "mailbox") for m in modules)


def test_every_node_kind_has_a_component() -> None:
    assert set(NODE_KINDS) == set(REGISTRY)
    assert {k.schema for k in REGISTRY.values()} == set(NODE_TYPES)
    with pytest.raises(ValueError, match="registered twice"):
        registers(MXNode)(object)


class TinyGreylist:
    """451 4.7.1 at RCPT for a (client, sender, recipient) triplet first seen under
    ``delay`` seconds ago: what a policy can decide from what it is told."""

    phase = Phase.RCPT
    reply = Reply(451, "4.7.1", "Greylisted, try again later", Phase.RCPT)

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.first: dict[tuple[str, str, str, int], float] = {}

    def check(self, server: Any, client: str, msg: Message | None, now: float) -> Reply | None:
        assert msg is not None
        triplet = (client, msg.sender.name, msg.domain.name, msg.user)
        first = self.first.setdefault(triplet, now)
        return None if now - first >= self.delay else self.reply


def test_a_policy_plugged_into_a_server_decides_its_replies() -> None:
    # The message is greylisted at RCPT (the last host: deferred), then retried at the
    # queue run of t=600, past the 300 s delay, and accepted.
    def hook(model: Any) -> None:
        model.node("mx").add_policy(TinyGreylist(delay=300))

    res = sim.run(tiny(duration=150), trace=True, hook=hook)
    assert res.attempts is not None
    rows = res.attempts[res.attempts["hop"] == 1]
    assert list(rows["reply"]) == [451, 250]
    assert list(rows["outcome"]) == ["deferred", "delivered"]
    assert list(rows["enhanced"]) == ["4.7.1", "2.0.0"]
    # 451 comes with the envelope's round trip: 7 round trips of 0.032 s after connecting.
    assert rows["end"].iloc[0] - rows["start"].iloc[0] == pytest.approx(7 * 0.032, abs=1e-9)
    row = res.messages.loc[0]
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert row["accepted"] == pytest.approx(600.202 + 8 * 0.032 + 0.002, abs=1e-9)
    # The MX's session slot was given back after the refusal.
    assert res.stats["mx"]["mx"]["sessions"] == 2


def test_postfix_backoff_is_age_clamped_until_the_lifetime() -> None:
    rule = PostfixBackoff(minimal=300, maximal=4000, lifetime=10_000)
    assert rule.next_due(queued_at=0, attempts=1, now=30) == 330  # 30 s old: the minimum
    assert rule.next_due(queued_at=0, attempts=2, now=1000) == 2000  # its age
    assert rule.next_due(queued_at=0, attempts=5, now=9000) == 13_000  # the cap
    assert rule.next_due(queued_at=0, attempts=6, now=10_000) is None  # expired


def test_an_interrupted_session_releases_everything_it_held() -> None:
    # One message, one worker; the worker is interrupted in the middle of the relay
    # session (which runs 100.59 .. 100.848). The MX's slot, the destination's count and
    # the MTA's session count come back; the message is deferred and delivered later.
    def hook(model: Any) -> None:
        mta = model.node("mta")
        model.at(100.7, lambda: mta.workers[0].interrupt("fault"))

    data = tiny_data(duration=150)
    node(data, "mta")["workers"] = 1
    model = sim.build(parse_scenario(data), trace=True)
    hook(model)
    model.run(until=101)
    mta, mx = model.node("mta"), model.node("mx")
    assert mx.connections == 0
    assert all(d.busy == 0 for d in mta.destinations.values())
    assert mta.in_session == 0 and len(mta.deferred) == 1
    assert sum(model.census().values()) == model.recorder.in_flight() == 1
    model.run()
    m = model.recorder.messages()
    a = model.recorder.attempts()
    assert a is not None
    assert list(a.loc[a["hop"] == 1, "outcome"]) == ["interrupted", "delivered"]
    assert m.loc[0, "status"] == "delivered" and m.loc[0, "attempts"] == 2


def test_parked_messages_are_in_the_census() -> None:
    # Five at once, five workers, two attempts per destination: three wait parked.
    data = burst(tiny_data(), 5)
    node(data, "mta").update(workers=5, destination_concurrency_limit=2)
    model = sim.build(parse_scenario(data))
    model.run(until=10.6)  # after submission (10.388) and during the first lookup
    mta = model.node("mta")
    assert sum(len(d.parked) for d in mta.destinations.values()) == 3
    assert model.census()["mta"] == model.recorder.in_flight() == 5



def test_an_interrupted_submission_keeps_the_message() -> None:
    # The only submission worker is interrupted mid-dialogue (100 .. 100.388): the client
    # still has the message and submits it again at once, taking the full 0.388 s again
    # (9 round trips of 0.042 s and 10 kB at 1 MB/s); the books balance throughout.
    data = tiny_data(duration=150)
    node(data, "mta")["smtpd_workers"] = 1
    model = sim.build(parse_scenario(data))
    model.at(100.2, lambda: model.node("mta").submission_workers[0].interrupt("fault"))
    model.run(until=100.3)
    mta = model.node("mta")
    assert (mta.connections, mta.in_session) == (1, 1)  # the second try is under way
    assert sum(model.census().values()) == model.recorder.in_flight() == 1
    model.run()
    row = model.recorder.messages().loc[0]
    assert row["submitted"] == pytest.approx(100.2 + 0.388, abs=1e-9)
    assert row["status"] == "delivered"


def test_a_host_taken_down_by_a_hook_stays_down_through_its_outage_schedule() -> None:
    # mx has a scheduled outage 150-250; a hook takes it down for good. The outage's
    # end must not bring it back: every message goes to the backup.
    data = two_mx(outages=[{"start": 150, "end": 250}])
    res = sim.run(parse_scenario(data), hook=lambda model: model.node("mx").set_up(False))
    assert set(res.messages["mx_host"].astype(str)) == {"mx2"}
    # Without the hook the outage alone sends only the message of t=200 to the backup.
    alone = sim.run(parse_scenario(data)).messages
    assert list(alone["mx_host"].astype(str)) == ["mx", "mx2", "mx"]


class EveryMinute:
    """A retry schedule as data: due 60 s after each failure, given up after 3 attempts."""

    def next_due(self, queued_at: float, attempts: int, now: float, dest: Any) -> float | None:
        return None if attempts >= 3 else now + 60


def test_an_mta_uses_the_retry_schedule_it_is_given() -> None:
    # The MX never answers; the queue is scanned every 10 s. The first attempt starts at
    # 100.59 (lookup 0.202 s) and fails at 130.59, due 190.59, scanned at 200: the MX
    # answer is still cached (until 100.588 + 150), so the second starts at 200.002 and
    # fails at 230.002, due 290.002, scanned at 300: a fresh lookup, the third starts at
    # 300.202 and fails at 330.202, and the schedule gives up: bounced.
    data = tiny_data(duration=150, drain=1000)
    node(data, "mta")["queue_run_delay"] = 10

    def hook(model: Any) -> None:
        model.node("mx").set_up(False)
        model.node("mta").use(retry=EveryMinute())

    res = sim.run(parse_scenario(data), trace=True, hook=hook)
    assert res.attempts is not None
    a = res.attempts
    starts = a[(a["hop"] == 1) & (a["id"] == 0)]["start"].tolist()  # not its DSN's
    assert starts == pytest.approx([100.59, 200.002, 300.202], abs=1e-9)
    row = res.messages.loc[0]
    assert (row["status"], row["reason"], row["attempts"]) == ("bounced", "queue lifetime expired", 3)
    assert row["ended"] == pytest.approx(330.202, abs=1e-9)


class Accepting:
    """A policy that 'answers' 250 at RCPT: a positive answer is a pass, not a delivery."""

    phase = Phase.RCPT

    def check(self, server: Any, client: str, msg: Message | None, now: float) -> Reply | None:
        return Reply(250, "2.1.5", "Ok", Phase.RCPT)


def test_a_positive_answer_from_a_policy_passes() -> None:
    res = sim.run(tiny(), hook=lambda model: model.node("mx").add_policy(Accepting()))
    assert (res.messages["status"] == "delivered").all()
    pd.testing.assert_frame_equal(res.messages, sim.run(tiny()).messages)


def test_an_asker_interrupted_during_a_lookup_does_not_wedge_the_domain() -> None:
    # Message 0's agent is interrupted while the resolver looks the domain up (100.388 ..
    # 100.588). The resolution goes on and is cached; the message is deferred and the
    # later messages (200, 300) use the resolver as usual.
    data = tiny_data()
    node(data, "mta")["workers"] = 1
    model = sim.build(parse_scenario(data))
    model.at(100.5, lambda: model.node("mta").workers[0].interrupt("fault"))
    model.run()
    m = model.results().messages
    assert list(m["status"]) == ["delivered"] * 3
    assert list(m["attempts"]) == [2, 1, 1]
    assert model.node("dns").queries == 4 and model.node("mta").in_session == 0


def test_idle_workers_survive_an_interrupt() -> None:
    # Every worker of every kind is interrupted at t=150, between the mail of t=100 (done
    # by 101) and that of t=200: nothing is held, nothing breaks, and the later mail goes
    # through as if nothing happened.
    interrupted: list[int] = []

    def hook(model: Any) -> None:
        def interrupt_all() -> None:
            mta, mx = model.node("mta"), model.node("mx")
            idle = [*mta.workers, *mta.submission_workers, *mx.scanners]
            interrupted.append(len(idle))
            for process in idle:
                process.interrupt("fault")

        model.at(150, interrupt_all)

    pd.testing.assert_frame_equal(sim.run(tiny(), hook=hook).messages, sim.run(tiny()).messages)
    assert interrupted == [3]  # one worker of each kind was started by the first message


@pytest.mark.parametrize("size", [1, 200])
def test_idle_capacity_costs_no_process_and_no_event(size: int) -> None:
    # A message at a time through pools of 1 or of 200 workers: the big pools start one
    # worker each, when the first message arrives, and the run schedules exactly as many
    # events as with pools of one (40 for the 3 messages; starting all 200 workers of
    # each pool at the start cost 597 events more).
    data = tiny_data()
    node(data, "mta").update(workers=size, smtpd_workers=size)
    node(data, "mx")["workers"] = size
    env = CountingEnvironment()
    model = sim.build(parse_scenario(data), env=env)
    model.start()
    mta, mx = model.node("mta"), model.node("mx")
    assert (mta.workers, mta.submission_workers, mx.scanners) == ([], [], [])
    model.run()
    assert (len(mta.workers), len(mta.submission_workers), len(mx.scanners)) == (1, 1, 1)
    assert env.scheduled == 40


def test_an_interrupted_scanner_gives_the_message_back() -> None:
    # The only scanner is interrupted during message 0's scan (100.848 .. 100.898): the
    # MX still has the message and scans it again from the interrupt on.
    data = tiny_data()
    node(data, "mx")["workers"] = 1
    model = sim.build(parse_scenario(data))
    model.at(100.87, lambda: model.node("mx").scanners[0].interrupt("fault"))
    model.run()
    m = model.results().messages
    assert (m["status"] == "delivered").all()
    assert m.loc[0, "delivered"] == pytest.approx(100.87 + 0.05 + 0.0051 + 0.01, abs=1e-9)


class Closed:
    """A concurrency policy that allows nothing (a destination it considers dead)."""

    def destination(self) -> Destination:
        return Destination()

    def allows(self, dest: Any, now: float) -> bool:
        return False

    def finished(self, dest: Any, outcome: Any, now: float) -> bool:
        return False


def test_a_closed_destination_defers_its_mail_instead_of_parking_it() -> None:
    data = tiny_data(duration=150, drain=2000)
    node(data, "mta")["maximal_queue_lifetime"] = 1000
    res = sim.run(parse_scenario(data), hook=lambda model: model.node("mta").use(concurrency=Closed()))
    row = res.messages.loc[0]
    # Never attempted, deferred on the Postfix schedule until its lifetime runs out.
    assert (row["status"], row["reason"], row["attempts"]) == ("bounced", "queue lifetime expired", 0)
    # Deferred at 100.388 (the 300 s minimum), then at its age at each queue run: 600
    # (due 1099.6) and 1200, where it is 1099.6 s old, past its 1000 s lifetime.
    assert row["deferrals"] == 2


def test_use_after_start_and_results_before_the_horizon_are_refused() -> None:
    model = sim.build(tiny())
    model.run(until=10)
    with pytest.raises(RuntimeError, match="use\\(\\) after the run started"):
        model.node("mta").use(concurrency=Closed())
    with pytest.raises(RuntimeError, match="run it to its horizon"):
        model.results()


def test_set_up_without_a_reason_brings_a_host_up_whatever_held_it_down() -> None:
    model = sim.build(tiny())
    mx = model.node("mx")
    mx.set_up(False, "maintenance")
    mx.set_up(False, "outage")
    mx.set_up(True, "outage")
    assert not mx.up  # maintenance still holds it down
    mx.set_up(True)
    assert mx.up
