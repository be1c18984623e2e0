"""The driver-readable reasons of a proposal, in Latvian, Lithuanian and English.

Every reason is a code with parameters (machine-readable, published as is)
and a rendering per language. Numbers are rounded for reading on a small
screen; the exact values travel in the parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Language = Literal["lv", "lt", "en"]
LANGUAGES: tuple[Language, ...] = ("lv", "lt", "en")

TEMPLATES: dict[str, dict[Language, str]] = {
    "unsafe": {
        "lv": "Prognoze: depo sasniegsim ar {soc:.0f} % uzlādes, bet vajag vismaz {need:.0f} % "
        "(rezerve {reserve:.0f} % + drošības rezerve {margin:.0f} %).",
        "lt": "Prognozė: į depą atvyksime su {soc:.0f} % įkrovos, o reikia bent {need:.0f} % "
        "(rezervas {reserve:.0f} % + saugos atsarga {margin:.0f} %).",
        "en": "Forecast: we reach the depot with {soc:.0f} % charge but need at least {need:.0f} % "
        "(reserve {reserve:.0f} % + safety margin {margin:.0f} %).",
    },
    "cold": {
        "lv": "Ārā {temp:.0f} °C: apkure stāvvietā patērē ap {site_kw:.1f} kW, braucot "
        "{drive:.2f} kWh/km.",
        "lt": "Lauke {temp:.0f} °C: šildymas stovint naudoja apie {site_kw:.1f} kW, važiuojant "
        "{drive:.2f} kWh/km.",
        "en": "Outside {temp:.0f} °C: heating on site uses about {site_kw:.1f} kW, driving "
        "{drive:.2f} kWh/km.",
    },
    # The bus's consumption as the projection has it, named for what the weather makes it:
    # heating ("cold"), air conditioning ("hot"), or neither ("mild").
    "hot": {
        "lv": "Ārā {temp:.0f} °C: gaisa kondicionēšana stāvvietā patērē ap {site_kw:.1f} kW, "
        "braucot {drive:.2f} kWh/km.",
        "lt": "Lauke {temp:.0f} °C: oro kondicionavimas stovint naudoja apie {site_kw:.1f} kW, "
        "važiuojant {drive:.2f} kWh/km.",
        "en": "Outside {temp:.0f} °C: air conditioning on site uses about {site_kw:.1f} kW, "
        "driving {drive:.2f} kWh/km.",
    },
    "mild": {
        "lv": "Ārā {temp:.0f} °C: stāvvietā autobuss patērē ap {site_kw:.1f} kW, braucot "
        "{drive:.2f} kWh/km.",
        "lt": "Lauke {temp:.0f} °C: stovėdamas autobusas naudoja apie {site_kw:.1f} kW, "
        "važiuodamas {drive:.2f} kWh/km.",
        "en": "Outside {temp:.0f} °C: on site the bus uses about {site_kw:.1f} kW, driving "
        "{drive:.2f} kWh/km.",
    },
    "shorten": {
        "lv": "Saīsināt apmeklējumu {name}: {before:.0f} → {after:.0f} min.",
        "lt": "Sutrumpinti apsilankymą {name}: {before:.0f} → {after:.0f} min.",
        "en": "Shorten the visit to {name}: {before:.0f} → {after:.0f} min.",
    },
    "lengthen": {
        "lv": "Pagarināt apmeklējumu {name}: {before:.0f} → {after:.0f} min.",
        "lt": "Pailginti apsilankymą {name}: {before:.0f} → {after:.0f} min.",
        "en": "Lengthen the visit to {name}: {before:.0f} → {after:.0f} min.",
    },
    "skip": {
        "lv": "Izlaist {name} (prioritāte {priority}): enerģijas nepietiek, lai to droši "
        "apkalpotu.",
        "lt": "Praleisti {name} (prioritetas {priority}): energijos nepakanka saugiai aptarnauti.",
        "en": "Skip {name} (priority {priority}): not enough energy to serve it safely.",
    },
    "restore": {
        "lv": "Enerģijas pietiek: atkal apkalpot {name} ({minutes:.0f} min).",
        "lt": "Energijos pakanka: vėl aptarnauti {name} ({minutes:.0f} min).",
        "en": "There is enough energy: serve {name} again ({minutes:.0f} min).",
    },
    "charge": {
        "lv": "Uzlādēt {name} ~{minutes:.0f} min (+{kwh:.0f} kWh, līdz {soc:.0f} %), "
        "pēc: {after}.",
        "lt": "Įkrauti {name} ~{minutes:.0f} min (+{kwh:.0f} kWh, iki {soc:.0f} %), "
        "po: {after}.",
        "en": "Charge at {name} for ~{minutes:.0f} min (+{kwh:.0f} kWh, to {soc:.0f} %), "
        "after: {after}.",
    },
    "drop_charge": {
        "lv": "Uzlāde {name} vairs nav vajadzīga.",
        "lt": "Įkrauti {name} nebereikia.",
        "en": "Charging at {name} is no longer needed.",
    },
    "reorder": {
        "lv": "Mainīt secību: {order}.",
        "lt": "Pakeisti tvarką: {order}.",
        "en": "Change the order: {order}.",
    },
    "result": {
        "lv": "Ar šīm izmaiņām depo sasniegsim ap {eta} ar {soc:.0f} % uzlādes.",
        "lt": "Su šiais pakeitimais į depą atvyksime apie {eta} su {soc:.0f} % įkrovos.",
        "en": "With these changes we reach the depot at about {eta} with {soc:.0f} % charge.",
    },
    # No safe plan: the first reason says which of the three it is, plainly; then what to do.
    "emergency_reserve": {
        "lv": "ĀRKĀRTAS SITUĀCIJA: neviens plāns nesaglabā rezervi. Pat braucot tūlīt uz depo, "
        "tur būsim ar {soc:.0f} % uzlādes (vajag {need:.0f} %).",
        "lt": "AVARINĖ SITUACIJA: nė vienas planas neišlaiko rezervo. Net važiuodami tiesiai į "
        "depą, ten būsime su {soc:.0f} % įkrovos (reikia {need:.0f} %).",
        "en": "EMERGENCY: no plan keeps the reserve. Even driving straight to the depot we "
        "arrive with {soc:.0f} % charge (need {need:.0f} %).",
    },
    "emergency_unreachable": {
        "lv": "ĀRKĀRTAS SITUĀCIJA: ar pašreizējo uzlādi ({soc:.0f} %) līdz depo netiksim "
        "({km:.0f} km).",
        "lt": "AVARINĖ SITUACIJA: su dabartine įkrova ({soc:.0f} %) iki depo nenuvažiuosime "
        "({km:.0f} km).",
        "en": "EMERGENCY: with the charge we have ({soc:.0f} %) we cannot reach the depot "
        "({km:.0f} km).",
    },
    "emergency_visits": {
        "lv": "ĀRKĀRTAS SITUĀCIJA: pat īsākos apmeklējumus nevar droši paturēt.",
        "lt": "AVARINĖ SITUACIJA: net trumpiausių apsilankymų saugiai išlaikyti negalime.",
        "en": "EMERGENCY: not even the shortest visits can be kept safely.",
    },
    "end_visit": {
        "lv": "Beidziet apmeklējumu {name} tūlīt.",
        "lt": "Nedelsdami baikite apsilankymą {name}.",
        "en": "End the visit to {name} now.",
    },
    "go_charger": {
        "lv": "Brauciet tūlīt uz uzlādes staciju {name} ({km:.0f} km) un uzlādējiet.",
        "lt": "Nedelsdami važiuokite į įkrovimo stotį {name} ({km:.0f} km) ir įkraukite.",
        "en": "Drive now to the charger at {name} ({km:.0f} km) and charge.",
    },
    "go_depot": {
        "lv": "Brauciet tūlīt tieši uz depo ({km:.0f} km).",
        "lt": "Nedelsdami važiuokite tiesiai į depą ({km:.0f} km).",
        "en": "Drive now straight to the depot ({km:.0f} km).",
    },
    "improved": {
        "lv": "Prognoze uzlabojusies: depo sasniegsim ar {soc:.0f} % (vajag {need:.0f} %).",
        "lt": "Prognozė pagerėjo: į depą atvyksime su {soc:.0f} % (reikia {need:.0f} %).",
        "en": "The forecast has improved: we reach the depot with {soc:.0f} % (need {need:.0f} %).",
    },
}


def render(code: str, params: Mapping[str, object], lang: Language) -> str:
    return TEMPLATES[code][lang].format(**params)


def render_all(code: str, params: Mapping[str, object]) -> dict[Language, str]:
    return {lang: render(code, params, lang) for lang in LANGUAGES}
