"""Languages: English (the default) and Simplified Chinese, chosen by Accept-Language.

The Chinese messages are a gettext catalogue, app/locale/zh_CN/LC_MESSAGES/burnban.po, read
with Babel; Babel also negotiates the locale. A message whose msgid holds `{0}`, `{1}`… is a
template: a detail it matches keeps its values (`no incident 'x'` → `没有案件 'x'`). What the
catalogue lacks stays in English. Codes, slugs and field names never change with the language.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from babel import negotiate_locale
from babel.messages.pofile import read_po

from app.formats import by_preference

ENGLISH = "en"
CHINESE = "zh_CN"
AVAILABLE = (ENGLISH, CHINESE)
CONTENT_LANGUAGE = {ENGLISH: "en", CHINESE: "zh-CN"}
_LOCALE_DIR = Path(__file__).parent / "locale"
_PLACEHOLDER = re.compile(r"\\\{(\d+)\\\}")

# The English labels of the codes answers carry; other languages translate them by code.
LABELS: dict[str, dict[str, str]] = {
    "statuses": {
        "dispatched": "Dispatched",
        "acknowledged": "Acknowledged",
        "on_site": "On site",
        "resolved": "Resolved",
        "returned": "Returned",
        "closed": "Closed",
        "rejected": "Voided",
    },
    "actions": {
        "acknowledge": "Acknowledge",
        "arrive": "Arrive on site",
        "resolve": "Resolve",
        "verify": "Verify",
        "return": "Return",
        "void": "Void",
        "reject": "Void (former name)",
        "reassign": "Reassign",
        "supervise": "Supervise",
        "revisit": "Revisit",
    },
    "roles": {
        "grid_worker": "Grid worker",
        "officer": "Officer",
        "supervisor": "Supervisor",
        "admin": "Administrator",
    },
    "assignment_roles": {
        "responsible": "Responsible",
        "lead": "Lead",
        "cooperating": "Cooperating",
    },
    "outcomes": {
        "extinguished": "Extinguished",
        "stopped": "Stopped",
        "no_fire_found": "No fire found",
        "penalized": "Penalized",
    },
    "penalty_kinds": {"warning": "Warning", "fine": "Fine"},
}


def locale_of(accept_language: str | None) -> str:
    """The available locale the header prefers (q-values honoured); English by default."""
    # Any Chinese is answered in Simplified Chinese, the only Chinese there is here.
    tags = [
        "zh_CN" if tag.lower().startswith("zh") else tag
        for tag in by_preference(accept_language)
        if tag != "*"
    ]
    return negotiate_locale(tags, list(AVAILABLE), sep="-") or ENGLISH if tags else ENGLISH


@functools.cache
def _catalogue(locale: str) -> tuple[dict[str, str], list[tuple[re.Pattern[str], str]]]:
    """The locale's messages, and its templates as patterns."""
    path = _LOCALE_DIR / locale / "LC_MESSAGES" / "burnban.po"
    if locale == ENGLISH or not path.exists():
        return {}, []
    with path.open("rb") as file:
        catalogue = read_po(file)
    messages = {str(m.id): str(m.string) for m in catalogue if m.id and m.string}
    templates = [
        (re.compile("^" + _PLACEHOLDER.sub(r"(?P<p\1>.+?)", re.escape(msgid)) + "$"), text)
        for msgid, text in messages.items()
        if "{0}" in msgid
    ]
    return messages, templates


def gettext(locale: str, message: str) -> str:
    """`message` in the locale: from the catalogue, by a template, or as it is."""
    messages, templates = _catalogue(locale)
    if not messages:
        return message
    if message in messages:
        return messages[message]
    for pattern, text in templates:
        found = pattern.match(message)
        if found is not None:
            values = {name[1:]: gettext(locale, v) for name, v in found.groupdict().items()}
            return _fill(text, values)
    return message


def _fill(template: str, values: dict[str, str]) -> str:
    """`template` with each `{n}` replaced by `values["n"]`."""

    def value(found: re.Match[str]) -> str:
        return values.get(found.group(1), found.group(0))

    return re.sub(r"\{(\d+)\}", value, template)


def label(locale: str, code: str) -> str:
    """A code's label: the English one, or the catalogue's translation of the code."""
    for group in LABELS.values():
        if code in group:
            return group[code] if locale == ENGLISH else gettext(locale, code)
    return code


def labels(locale: str) -> dict[str, dict[str, str]]:
    """Every label group in the locale."""
    return {name: {code: label(locale, code) for code in group} for name, group in LABELS.items()}
