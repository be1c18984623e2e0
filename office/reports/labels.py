"""The reports' words in Latvian, Lithuanian and English: indicator names, column heads,
sheet names, temperature bands. One table, used by the exports and the pages alike."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from busd.config.services import BUILT_IN_LABELS, DEFAULT_ACTIVITIES, DEFAULT_TYPES
from busd.planner.i18n import LANGUAGES, Language
from office.reports.models import Indicators, TempBand

__all__ = ["BANDS", "INDICATORS", "LANGUAGES", "WORDS", "Language", "band", "in_order",
           "indicator", "service_label", "word"]

# In the order the exports list them; each with its unit in the heading.
INDICATORS: Final[dict[str, dict[Language, str]]] = {
    "days_operated": {"lv": "Darba dienas", "lt": "Darbo dienos", "en": "Days operated"},
    "clients_served": {"lv": "Apkalpotie klienti", "lt": "Aptarnauti klientai",
                       "en": "Clients served"},
    "route_min": {"lv": "Maršruta ilgums, min", "lt": "Maršruto trukmė, min",
                  "en": "Route duration, min"},
    "driving_min": {"lv": "Braukšana, min", "lt": "Važiavimas, min", "en": "Driving, min"},
    "km": {"lv": "Nobraukums, km", "lt": "Rida, km", "en": "Distance, km"},
    "kwh": {"lv": "Enerģija, kWh", "lt": "Energija, kWh", "en": "Energy, kWh"},
    "kwh_per_km": {"lv": "kWh/km", "lt": "kWh/km", "en": "kWh/km"},
    "visits": {"lv": "Apmeklējumi", "lt": "Apsilankymai", "en": "Visits"},
    "on_site_min": {"lv": "Laiks pieturās, min", "lt": "Laikas stotelėse, min",
                    "en": "Time on site, min"},
    "lift_cycles": {"lv": "Pacēlāja cikli", "lt": "Keltuvo ciklai", "en": "Lift cycles"},
    "places_planned": {"lv": "Plānotās vietas", "lt": "Planuotos vietos",
                       "en": "Places planned"},
    "places_visited": {"lv": "Apmeklētās vietas", "lt": "Aplankytos vietos",
                       "en": "Places visited"},
    "coverage": {"lv": "Teritoriālais pārklājums", "lt": "Teritorinė aprėptis",
                 "en": "Territorial coverage"},
    "stops_planned": {"lv": "Plānotās pieturas", "lt": "Planuotos stotelės",
                      "en": "Stops planned"},
    "stops_served": {"lv": "Apkalpotas", "lt": "Aptarnautos", "en": "Stops served"},
    "stops_shortened": {"lv": "Saīsinātas", "lt": "Sutrumpintos", "en": "Stops shortened"},
    "stops_skipped": {"lv": "Izlaistas", "lt": "Praleistos", "en": "Stops skipped"},
    "charging_sessions": {"lv": "Uzlādes", "lt": "Įkrovimai", "en": "Charging sessions"},
    "charged_kwh": {"lv": "Uzlādēts, kWh", "lt": "Įkrauta, kWh", "en": "Charged, kWh"},
    "alerts": {"lv": "Brīdinājumi", "lt": "Įspėjimai", "en": "Alerts"},
    "alert_min": {"lv": "Brīdinājumu ilgums, min", "lt": "Įspėjimų trukmė, min",
                  "en": "Alert duration, min"},
    "emergencies": {"lv": "Ārkārtas situācijas", "lt": "Avarinės situacijos",
                    "en": "Emergencies"},
}
assert set(INDICATORS) == set(Indicators.model_fields), "every indicator has its words"

WORDS: Final[dict[str, dict[Language, str]]] = {
    "bus": {"lv": "Autobuss", "lt": "Autobusas", "en": "Bus"},
    "day": {"lv": "Diena", "lt": "Diena", "en": "Day"},
    "total": {"lv": "Kopā", "lt": "Iš viso", "en": "Total"},
    "municipality": {"lv": "Pašvaldība", "lt": "Savivaldybė", "en": "Municipality"},
    "period": {"lv": "Periods", "lt": "Laikotarpis", "en": "Period"},
    "indicator": {"lv": "Rādītājs", "lt": "Rodiklis", "en": "Indicator"},
    "value": {"lv": "Vērtība", "lt": "Reikšmė", "en": "Value"},
    "place": {"lv": "Vieta", "lt": "Vieta", "en": "Place"},
    "place_id": {"lv": "Vietas kods", "lt": "Vietos kodas", "en": "Place id"},
    "planned_days": {"lv": "Plānotās dienas", "lt": "Planuotos dienos", "en": "Days planned"},
    "days_visited": {"lv": "Apmeklētās dienas", "lt": "Aplankytos dienos",
                     "en": "Days visited"},
    "minutes": {"lv": "Minūtes", "lt": "Minutės", "en": "Minutes"},
    "band": {"lv": "Temperatūra", "lt": "Temperatūra", "en": "Temperature"},
    "legs": {"lv": "Posmi", "lt": "Atkarpos", "en": "Legs"},
    "alert": {"lv": "Brīdinājums", "lt": "Įspėjimas", "en": "Alert"},
    "count": {"lv": "Skaits", "lt": "Skaičius", "en": "Count"},
    "summary": {"lv": "Kopsavilkums", "lt": "Santrauka", "en": "Summary"},
    "by_bus": {"lv": "Pa autobusiem", "lt": "Pagal autobusus", "en": "By bus"},
    "by_day": {"lv": "Pa dienām", "lt": "Pagal dienas", "en": "By day"},
    "lines": {"lv": "Autobuss un diena", "lt": "Autobusas ir diena", "en": "Bus and day"},
    "places": {"lv": "Vietas", "lt": "Vietos", "en": "Places"},
    "bands": {"lv": "Enerģija pēc temperatūras", "lt": "Energija pagal temperatūrą",
              "en": "Energy by temperature"},
    "alerts": {"lv": "Brīdinājumi", "lt": "Įspėjimai", "en": "Alerts"},
    "time_zone": {"lv": "Laika josla", "lt": "Laiko juosta", "en": "Time zone"},
    "services": {"lv": "Klienti pa pakalpojumiem", "lt": "Klientai pagal paslaugas",
                 "en": "Clients by service"},
    "activities": {"lv": "Laiks pa darbībām, min", "lt": "Laikas pagal veiklas, min",
                   "en": "Time by activity, min"},
    "service": {"lv": "Pakalpojums", "lt": "Paslauga", "en": "Service"},
    "activity": {"lv": "Darbība", "lt": "Veikla", "en": "Activity"},
}

BANDS: Final[dict[TempBand, dict[Language, str]]] = {
    "below_-10": {"lv": "zem −10 °C", "lt": "žemiau −10 °C", "en": "below −10 °C"},
    "-10_0": {"lv": "−10…0 °C", "lt": "−10…0 °C", "en": "−10…0 °C"},
    "0_10": {"lv": "0…10 °C", "lt": "0…10 °C", "en": "0…10 °C"},
    "10_20": {"lv": "10…20 °C", "lt": "10…20 °C", "en": "10…20 °C"},
    "20_up": {"lv": "20 °C un vairāk", "lt": "20 °C ir daugiau", "en": "20 °C and above"},
    "unknown": {"lv": "nav zināma", "lt": "nežinoma", "en": "unknown"},
}


def indicator(name: str, lang: Language) -> str:
    return INDICATORS[name][lang]


def word(name: str, lang: Language) -> str:
    return WORDS[name][lang]


def band(name: TempBand, lang: Language) -> str:
    return BANDS[name][lang]


def service_label(name: str, lang: Language) -> str:
    """A service type's or an activity's name (the bus's built-in labels; an id a bus
    configured with its own labels is shown as its id: the office does not have them)."""
    labels = BUILT_IN_LABELS.get(name)
    return name if labels is None else str(getattr(labels, lang))


_ORDER: Final = {name: i for i, name in enumerate((*DEFAULT_TYPES, *DEFAULT_ACTIVITIES))}


def in_order(names: Iterable[str]) -> list[str]:
    """Service types or activities in the staff page's order, unknown ids after, by name."""
    return sorted(set(names), key=lambda n: (_ORDER.get(n, len(_ORDER)), n))
