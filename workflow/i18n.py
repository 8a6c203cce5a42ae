"""Messages for people, in the reader's language.

The engine writes each refusal as `_l("... %(name)s ...", name=value)`: a message id with named parameters,
translated only when it is turned into text. So workflow/ raises it without a request; the page shows it in
the page's language, the API in the request's (English unless the client asks otherwise), the command
line in English, and babel extracts workflow/**.py like web/ (babel.cfg). A message kept for later (a
job's result) is stored as `stored()` and shown again, in the reader's language, by `from_stored()`.

Words the engine names in a message (an action, a role, a state) are `term(kind, key)`: the key itself in
English (`qualify`, as the API has always said), the web layer's label in another language
(`register_terms`, called by web/ at start-up, so workflow/ imports nothing from web/).
"""
from __future__ import annotations

from typing import Any

from flask_babel import get_locale, gettext
from flask_babel.speaklater import LazyString

_TERMS: dict[str, dict[str, Any]] = {}


def _render(msgid: str, params: dict[str, Any]) -> str:
    return gettext(msgid, **params) if params else gettext(msgid)


class Message(LazyString):
    """A message id and its parameters, translated each time it is turned into text."""

    def __init__(self, msgid: str, **params: Any):
        super().__init__(_render, msgid, params)
        self.msgid, self.params = msgid, params

    def stored(self) -> dict[str, Any]:
        """A JSON form of the message, for `from_stored`."""
        return {"msgid": self.msgid, "params": {k: _store(v) for k, v in self.params.items()}}


def _l(msgid: str, **params: Any) -> Message:
    """The marker babel extracts: a message translated when it is shown."""
    return Message(msgid, **params)


class Term(LazyString):
    """A word the engine names (an action, a role, a state): the key in English, else the label web/
    registered for it."""

    def __init__(self, kind: str, key: str):
        super().__init__(_term, kind, key)
        self.kind, self.key = kind, key


def _term(kind: str, key: str) -> str:
    locale = get_locale()
    label = _TERMS.get(kind, {}).get(key)
    if label is None or locale is None or locale.language == "en":
        return key
    return str(label)


def term(kind: str, key: str) -> Term:
    return Term(kind, key)


def register_terms(kind: str, labels: dict[str, Any]) -> None:
    """The labels of `kind` (e.g. "action": {"qualify": lazy "Qualify"}), for messages in other languages."""
    _TERMS[kind] = labels


def _store(value: Any) -> Any:
    if isinstance(value, Message):
        return {"message": value.stored()}
    if isinstance(value, Term):
        return {"term": [value.kind, value.key]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _load(value: Any) -> Any:
    if isinstance(value, dict) and "message" in value:
        return from_stored(value["message"])
    if isinstance(value, dict) and "term" in value:
        return Term(*value["term"])
    return value


def from_stored(data: Any) -> Message | None:
    """The message `Message.stored()` gave, or None for anything else."""
    if not isinstance(data, dict) or not isinstance(data.get("msgid"), str):
        return None
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    return Message(data["msgid"], **{k: _load(v) for k, v in params.items()})


def text(message: Any) -> str:
    """A message as text now (in the current language), for storing or logging."""
    return str(message)
