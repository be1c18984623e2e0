"""A stop's reason in the staff's language, rendered from its code, never parsed from text.

The planner's reasons travel as a code with parameters (busd/planner/i18n.py has the
templates: the office renders them itself, so a wording fixed in a later release reaches old
days too). Codes the office knows and the bus does not (a stop skipped or cut short with no
plan change behind it) are the office's own, below. A code neither side knows falls back to
the bus's own rendering in that language, then English, then the code itself.
"""

from __future__ import annotations

from busd.planner import i18n
from busd.planner.i18n import LANGUAGES, Language
from office.dayview.models import ReasonNote

__all__ = ["LANGUAGES", "OFFICE_TEMPLATES", "Language", "reason_text"]

OFFICE_TEMPLATES: dict[str, dict[Language, str]] = {
    "not_visited": {
        "lv": "Pietura netika apmeklēta, un plānotājs to nebija mainījis.",
        "lt": "Stotelė neaplankyta, o planuotojas jos nebuvo pakeitęs.",
        "en": "The stop was not visited, and the planner had not changed it.",
    },
    "stayed_shorter": {
        "lv": "Stāvēja {minutes:.0f} min no plānotajām {planned:.0f}; plānotājs to nebija "
        "mainījis.",
        "lt": "Stovėjo {minutes:.0f} min iš planuotų {planned:.0f}; planuotojas to nebuvo "
        "pakeitęs.",
        "en": "Stayed {minutes:.0f} of the planned {planned:.0f} min; the planner had not "
        "changed it.",
    },
}


def reason_text(note: ReasonNote, lang: Language) -> str:
    """``note`` as one sentence in ``lang``."""
    templates = OFFICE_TEMPLATES.get(note.code) or i18n.TEMPLATES.get(note.code)
    if templates is not None:
        try:
            return templates[lang].format(**note.params)
        except (KeyError, IndexError, ValueError):
            pass  # parameters of another release: the bus's own text below
    return note.texts.get(lang) or note.texts.get("en") or note.code
