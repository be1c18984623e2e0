"""No safe plan: the proposal says so plainly, in Latvian, Lithuanian and English, and
sends the bus to the nearest open charger or to the depot."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from busd.event_catalog import Proposal
from busd.plan import parse_plan
from tests.test_planner_scenarios import PLAN_FILE, no_chargers, third_stop

ENGLISH = ("EMERGENCY", "depot", "charger", "Drive", "visit")


@pytest.fixture
def raw() -> dict[str, Any]:
    return tomllib.loads(PLAN_FILE.read_text())


def texts(proposal: Proposal, code: str) -> dict[str, str]:
    return next(r.text for r in proposal.reasons if r.code == code)


@pytest.mark.parametrize(
    ("soc", "code", "headline"),
    [
        # 17 km home at ~0.35 kWh/km: not even straight home keeps above 0 %
        (5, "emergency_unreachable", {"lv": "līdz depo netiksim", "lt": "iki depo nenuvažiuosime",
                                      "en": "cannot reach the depot"}),
        # straight home arrives, but below reserve + margin
        (15, "emergency_reserve", {"lv": "neviens plāns nesaglabā rezervi",
                                   "lt": "nė vienas planas neišlaiko rezervo",
                                   "en": "no plan keeps the reserve"}),
        # home now is safe, but the visit under way cannot keep its minimum
        (28, "emergency_visits", {"lv": "pat īsākos apmeklējumus", "lt": "net trumpiausių",
                                  "en": "not even the shortest visits"}),
    ],
)
def test_each_kind_of_emergency_is_said_plainly_in_three_languages(
    raw: dict[str, Any], soc: float, code: str, headline: dict[str, str]
) -> None:
    core, _ = third_stop(no_chargers(raw), soc=soc)
    proposal = core.pending
    assert proposal is not None and proposal.emergency and proposal.kind == "emergency"
    first = proposal.reasons[0]
    assert first.code == code
    for lang, words in headline.items():
        assert words in first.text[lang]
    assert first.text["lv"].startswith("ĀRKĀRTAS SITUĀCIJA")
    assert first.text["lt"].startswith("AVARINĖ SITUACIJA")
    assert first.text["en"].startswith("EMERGENCY")
    # what to do: end the visit under way, drive straight to the depot
    assert [r.code for r in proposal.reasons][1:3] == ["end_visit", "go_depot"]
    assert "Turki" in texts(proposal, "end_visit")["lv"]
    assert texts(proposal, "go_depot")["lv"] == "Brauciet tūlīt tieši uz depo (17 km)."
    assert texts(proposal, "go_depot")["lt"] == "Nedelsdami važiuokite tiesiai į depą (17 km)."
    go = [c for c in proposal.changes if c.kind == "go_to"]
    assert len(go) == 1 and go[0].charger is None and go[0].stop == "turki"
    # no English left in the driver's languages (the depot's name once was)
    for reason in proposal.reasons:
        for lang in ("lv", "lt"):
            assert not any(w in reason.text[lang] for w in ENGLISH), reason.text[lang]


def test_a_nearby_open_charger_is_where_the_emergency_sends_the_bus(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    turki = next(s for s in data["stops"] if s["id"] == "turki")
    data["chargers"].append(
        {"id": "turki-dc", "name": "Turki tautas nams", "lat": turki["lat"] + 0.02,
         "lon": turki["lon"], "power_kw": 22, "opens": "06:00:00", "closes": "22:00:00"}
    )
    core, _ = third_stop(parse_plan(data), soc=15)
    proposal = core.pending
    assert proposal is not None and proposal.emergency
    go = [c for c in proposal.changes if c.kind == "go_to"]
    assert go[0].charger == "turki-dc"
    charger = texts(proposal, "go_charger")
    assert charger["lv"].startswith("Brauciet tūlīt uz uzlādes staciju Turki tautas nams (3 km)")
    assert charger["lt"].startswith("Nedelsdami važiuokite į įkrovimo stotį Turki tautas nams")
    assert charger["en"].startswith("Drive now to the charger at Turki tautas nams (3 km)")
    assert "go_depot" not in [r.code for r in proposal.reasons]
