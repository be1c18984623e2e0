"""The dispatcher's page (office/web/pages/commands.py) with aiohttp's test client: viewers
see the commands but cannot send, a bad plan is refused with its problems before anything is
sent, and a plan sent from the page reaches a real uplink over a real mosquitto, whose answer
(accepted, or rejected with the reason) the page then lists."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from busd.ports import CommandOutcome, JsonObject
from office.config import parse_config
from telemetry.mqtt import BrokerSettings
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.office_web import DISPATCHER, VIEWER, WebUnderTest, log_in, web_under_test
from tests.support.uplink_env import bus_config, running_bus
from tests.support.wait import wait_until
from tests.test_command_delivery_e2e import riga_today

HTML = {"Accept": "text/html"}
BUS = "bus-01"


def plan_json(version: int, *, bus: str | None = BUS, days: int = 0) -> str:
    plan: dict[str, Any] = {
        "date": riga_today(days).isoformat(), "version": version,
        "depot": {"id": "livani", "name": "Līvāni", "lat": 56.3543, "lon": 26.1758},
        "stops": [{"id": "rozupe", "name": "Rožupe", "lat": 56.33, "lon": 26.22,
                   "planned_min": 60, "min_min": 20}]}
    if bus is not None:
        plan["bus"] = bus
    return json.dumps(plan)


@asynccontextmanager
async def dispatching(tmp_path: Path, port: int, *, wait_s: float = 10.0,
                      plans_dir: Path | None = None) -> AsyncIterator[WebUnderTest]:
    """The web with a broker on ``port``, its clock at real time (plans are for today).
    ``plans_dir``: Līvāni's generated plans (its buses: bus-*)."""
    extra: dict[str, Any] = {} if plans_dir is None else {"municipalities": [
        {"id": "livani", "name": "Līvāni", "buses": ["bus-*"], "plans_dir": str(plans_dir)}]}
    config = parse_config({"web": {"port": 0},
                           "mqtt": {"host": "127.0.0.1", "port": port}, **extra})
    async with web_under_test(tmp_path, config=config) as w:
        await w.clock.advance(time.time() - w.clock.now())
        w.ctx.broker = BrokerSettings(host="127.0.0.1", port=port, timeout_s=5)
        w.ctx.dispatch_wait_s = wait_s
        yield w


async def post_plan(w: WebUnderTest, csrf: str, *, bus: str = BUS, text: str = "",
                    upload: str | None = None) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("bus", bus)
    form.add_field("plan", text)
    if upload is not None:
        form.add_field("file", upload.encode(), filename="plan.json",
                       content_type="application/json")
    return await w.client.post("/commands/plan", data=form, headers=HTML,
                               allow_redirects=False)


async def test_viewers_see_the_commands_but_cannot_send(tmp_path: Path) -> None:
    async with dispatching(tmp_path, free_port()) as w:
        csrf = await log_in(w.client, *VIEWER)
        page = await w.client.get("/commands", headers=HTML)
        html = await page.text()
        assert page.status == 200 and 'href="/commands"' in html  # in the navigation
        assert 'action="/commands/plan"' not in html and "No command" not in html
        refused = await post_plan(w, csrf, text=plan_json(1))
        assert refused.status == 403
        assert await w.ctx.archive.commands() == []


async def test_a_send_needs_the_csrf_token(tmp_path: Path) -> None:
    async with dispatching(tmp_path, free_port()) as w:
        await log_in(w.client, *DISPATCHER)
        forged = await post_plan(w, "not-the-token", text=plan_json(1))
        assert forged.status == 403 and "CSRF" in await forged.text()
        assert await w.ctx.archive.commands() == []


async def test_a_bad_plan_is_refused_with_its_problems_and_nothing_is_sent(
        tmp_path: Path) -> None:
    # Nothing listens on the port: a plan that got as far as sending would fail with 503.
    async with dispatching(tmp_path, free_port()) as w:
        csrf = await log_in(w.client, *DISPATCHER)
        page = await w.client.get("/commands", headers=HTML)
        assert 'action="/commands/plan"' in await page.text()
        not_json = await post_plan(w, csrf, text="{date: tomorrow")
        assert not_json.status == 400 and "file: not JSON" in await not_json.text()
        no_depot = json.loads(plan_json(1))
        del no_depot["depot"]
        del no_depot["stops"][0]["min_min"]
        missing = await post_plan(w, csrf, text=json.dumps(no_depot))
        html = await missing.text()
        assert missing.status == 400 and 'id="plan-problems"' in html
        assert "<li>depot: " in html and "<li>stops.0.min_min: " in html
        assert "&#34;version&#34;: 1" in html  # the pasted text is kept to be corrected
        other_bus = await post_plan(w, csrf, text=plan_json(1, bus="bus-02"))
        assert other_bus.status == 400 and "for bus &#39;bus-02&#39;" in await other_bus.text()
        bad_bus = await post_plan(w, csrf, bus="Bus 1!", text=plan_json(1))
        assert bad_bus.status == 400
        assert await w.ctx.archive.commands() == []


async def test_a_plan_sent_from_the_page_is_answered_by_the_bus(mosquitto: Mosquitto,
                                                                tmp_path: Path) -> None:
    taken: list[int] = []

    async def planner(body: JsonObject) -> CommandOutcome:
        version = int(body["version"])
        if version == 2:
            return CommandOutcome.reject("version 2 is below the accepted version 3")
        taken.append(version)
        return CommandOutcome.accept(version=version)

    config = bus_config(tmp_path, mosquitto.port, BUS)
    async with dispatching(tmp_path, mosquitto.port) as w, \
            running_bus(config, handlers={"plan": planner}) as (parts, _):
        csrf = await log_in(w.client, *DISPATCHER)
        await wait_until(lambda: parts.uplink.connected_since is not None, timeout=10,
                         what="the bus subscribed")
        # Uploaded as a file, wrapped as cmd/plan carries it.
        sent = await post_plan(w, csrf, upload=json.dumps({"plan": json.loads(plan_json(1))}))
        assert sent.status == 303, await sent.text()
        page = await w.client.get(sent.headers["Location"], headers=HTML)
        html = await page.text()
        assert 'id="send-outcome"' in html and "bus-01 pieņēma plānu" in html
        assert taken == [1]
        await w.clock.advance(60)  # the list is newest first
        rejected = await post_plan(w, csrf, text=plan_json(2))
        assert rejected.status == 303
        listed = await (await w.client.get("/commands", headers=HTML)).text()
        rows = listed.split('<tbody>')[1]
        assert rows.index('data-state="rejected"') < rows.index('data-state="accepted"')
        assert "version 2 is below the accepted version 3" in rows
        assert rows.count("<tr data-id=") == 2 and taken == [1]
        statuses = {c.sent.version: c.status for c in await w.ctx.archive.commands()}
        assert statuses == {1: "accepted", 2: "rejected"}
        only = await (await w.client.get("/commands?bus=bus-02", headers=HTML)).text()
        assert "<tr data-id=" not in only


async def test_a_plan_for_a_bus_that_does_not_answer_is_pending(mosquitto: Mosquitto,
                                                                tmp_path: Path) -> None:
    async with dispatching(tmp_path, mosquitto.port, wait_s=0.3) as w:
        csrf = await log_in(w.client, *DISPATCHER)
        sent = await post_plan(w, csrf, text=plan_json(1))
        assert sent.status == 303
        html = await (await w.client.get(sent.headers["Location"], headers=HTML)).text()
        assert "outcome-pending" in html
        assert 'data-state="pending"' in html and "gaida" in html
        # A plan whose day is over is not sent at all.
        late = await post_plan(w, csrf, text=plan_json(1, days=-1))
        html = await (await w.client.get(late.headers["Location"], headers=HTML)).text()
        assert "outcome-expired" in html and "diena ir beigusies" in html
        assert len(await w.ctx.archive.commands()) == 1


async def test_a_generated_plan_is_picked_from_the_plans_dir_and_sent(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """The plans busd office plan generate wrote: those ready (today on, not flagged unsafe)
    are offered to dispatchers only, and the one picked is sent to its own bus."""
    out = tmp_path / "plans"
    (out / riga_today(1).isoformat()).mkdir(parents=True)
    (out / "bus-01.json").write_text(plan_json(11), encoding="utf-8")
    (out / riga_today(1).isoformat() / "bus-02.json").write_text(
        plan_json(12, bus="bus-02", days=1), encoding="utf-8")
    (out / "bus-03.unsafe.json").write_text(plan_json(13, bus="bus-03"), encoding="utf-8")
    (out / "old.json").write_text(plan_json(14, days=-1), encoding="utf-8")
    async with dispatching(tmp_path, mosquitto.port, wait_s=0.3, plans_dir=out) as w:
        csrf = await log_in(w.client, *VIEWER)
        html = await (await w.client.get("/commands", headers=HTML)).text()
        assert 'action="/commands/generated"' not in html
        await w.client.post("/logout", data={"csrf": csrf})

        csrf = await log_in(w.client, *DISPATCHER)
        html = await (await w.client.get("/commands", headers=HTML)).text()
        offered = [line.split('"')[1] for line in html.split("<option value=")[1:]]
        assert offered == ["livani:bus-01.json",
                           f"livani:{riga_today(1).isoformat()}/bus-02.json"]
        sent = await w.client.post("/commands/generated", allow_redirects=False, data={
            "csrf": csrf, "pick": offered[1]})
        assert sent.status == 303 and "to=bus-02" in sent.headers["Location"]
        [command] = await w.ctx.archive.commands()
        assert (command.sent.bus, command.sent.version, command.sent.day) == (
            "bus-02", 12, riga_today(1))
        for bad in ("livani:bus-03.unsafe.json", "livani:old.json", "livani:../x.json"):
            refused = await w.client.post("/commands/generated", data={"csrf": csrf,
                                                                       "pick": bad})
            assert refused.status == 400 and "not a generated plan" in await refused.text()
        assert len(await w.ctx.archive.commands()) == 1
