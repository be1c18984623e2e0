"""Loading a DBC file, with errors that say what is wrong and how to fix it.

Community DBC files are often not perfectly formed. Two kinds of fault need
different advice: a file that parses but breaks a rule cantools checks in
strict mode (a signal that does not fit its message, say) loads relaxed, so
``can.dbc_strict = false`` helps; a file that does not parse at all (often one
without the ``BS_:``/``BU_:`` lines, after which cantools' grammar reads the
next ``BO_`` as part of the ``NS_`` list) loads in neither mode, and advising
relaxed loading there only sends the user round in circles. So the relaxed
load is tried before it is recommended, and a parse error names the file's
full path, its line and column, and the likely cause when it is recognisable.
"""

from __future__ import annotations

import re
from pathlib import Path

import cantools
import cantools.database
import structlog
from cantools.database.can import Database

from busd.errors import ConfigError

log = structlog.get_logger("drivers.can.dbc_file")

_AT_LINE = re.compile(r"line (\d+), column (\d+)")
_FIRST_MESSAGE = re.compile(r"^BO_ ", re.MULTILINE)
_MISSING_HEADER_FIX = (
    "likely cause: the file has no 'BS_:' and 'BU_:' lines, which must come "
    "between the 'NS_ :' block and the first 'BO_'; fix: add the two lines "
    "'BS_:' and 'BU_:' (an empty node list is fine) before the first 'BO_'"
)


def load_dbc(path: Path, *, strict: bool) -> Database:
    """Load a DBC; a relaxed load is logged with what cantools objected to.

    Raises ConfigError (key ``can.dbc``) saying what is wrong: the relaxed
    mode is suggested only when a relaxed load was tried and succeeded.
    """
    full = path.resolve()
    try:
        text = full.read_text(encoding="cp1252", errors="replace")
    except FileNotFoundError:
        raise ConfigError([("can.dbc", f"file not found: {full}")]) from None
    except OSError as err:
        raise ConfigError([("can.dbc", f"cannot read {full}: {err}")]) from err
    try:
        return _load(text, strict=True)
    except Exception as err:  # cantools raises several unrelated types for a bad file
        strict_error = err
    try:
        db = _load(text, strict=False)
    except Exception as err:
        raise ConfigError([("can.dbc", _does_not_parse(full, text, err))]) from err
    if strict:
        raise ConfigError([(
            "can.dbc",
            f"{full} does not load strictly ({_describe(strict_error)}); it does load "
            "relaxed: fix the file, or set can.dbc_strict = false to accept it as it is",
        )])
    log.warning("dbc_loaded_relaxed", file=str(full), objection=_describe(strict_error))
    return db


def _load(text: str, *, strict: bool) -> Database:
    db = cantools.database.load_string(text, database_format="dbc", strict=strict)
    assert isinstance(db, Database)  # a "dbc" format always gives a CAN database
    return db


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"


def _position(err: BaseException) -> tuple[int, int] | None:
    """Line and column of a parse error (textparser's ParseError is the cause)."""
    cause: BaseException | None = err
    while cause is not None:
        line, column = getattr(cause, "line", None), getattr(cause, "column", None)
        if isinstance(line, int) and isinstance(column, int):
            return line, column
        cause = cause.__cause__ or cause.__context__
    found = _AT_LINE.search(str(err))
    return (int(found[1]), int(found[2])) if found else None


def _lacks_header(text: str) -> bool:
    """True when the file has no BS_/BU_ line and parses once they are added."""
    has = {line.split(":", 1)[0].strip() for line in text.splitlines()}
    if "BS_" in has and "BU_" in has:
        return False
    first = _FIRST_MESSAGE.search(text)
    if first is None:
        return False
    header = ("" if "BS_" in has else "BS_:\n\n") + ("" if "BU_" in has else "BU_:\n\n")
    try:
        _load(text[: first.start()] + header + text[first.start():], strict=False)
    except Exception:
        return False
    return True


def _does_not_parse(full: Path, text: str, err: Exception) -> str:
    where = _position(err)
    at = f" at line {where[0]}, column {where[1]}" if where else ""
    reason = f"{full} does not parse{at}: {_describe(err)}"
    if _lacks_header(text):
        reason += f"; {_MISSING_HEADER_FIX}"
    # No strictness advice: a relaxed load was tried and failed as well.
    return reason
