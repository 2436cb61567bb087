"""How a setting is declared, and the converters that read its text.

A converter turns the text of a variable into a typed value or raises
ValueError; its ``accepted`` text says what it takes, and is what the error
message, ``--help``, ``.env.example`` and the README table all print.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from collections.abc import Callable
from dataclasses import Field, field
from typing import Any, get_args, get_origin

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class Converter:
    def __init__(self, accepted: str, convert: Callable[[str], Any], choices: tuple = ()) -> None:
        self.accepted = accepted
        self.choices = choices
        self._convert = convert

    def __call__(self, text: str) -> Any:
        return self._convert(text)


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS + FALSE_WORDS:
        return word in TRUE_WORDS
    raise ValueError(f"expected one of {', '.join(TRUE_WORDS + FALSE_WORDS)}")


boolean = Converter("true/false (1, yes, on / 0, no, off)", _boolean)


def choice(*options: str) -> Converter:
    def convert(text: str) -> str:
        if text.strip().lower() not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text.strip().lower()

    return Converter(", ".join(options), convert, options)


def integer(minimum: int, maximum: int | None = None, unit: str = "") -> Converter:
    noun = f"a whole number{' of ' + unit if unit else ''}"
    accepted = f"{noun} from {minimum} to {maximum}" if maximum else f"{noun}, at least {minimum}"

    def convert(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"expected {accepted}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"expected {accepted}")
        return value

    return Converter(accepted, convert)


def _seconds(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("expected a number of seconds greater than 0, such as 8 or 2.5") from None
    if not 0 < value < float("inf"):
        raise ValueError("expected a number of seconds greater than 0, such as 8 or 2.5")
    return value


seconds = Converter("seconds, greater than 0", _seconds)

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _address(text: str) -> str:
    text = text.strip()
    value = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if _HOSTNAME.match(value):
        return value.lower()
    raise ValueError("expected an IP address such as 0.0.0.0, 127.0.0.1 or ::, or a host name")


address = Converter("an IP address or host name", _address)


def text(accepted: str) -> Converter:
    """Any text, as written (a secret keeps its spaces); ``accepted`` says what belongs there."""
    return Converter(accepted, lambda value: value)


def from_type(hint: Any) -> Converter:
    """The converter a type implies: a ``Literal`` is its choices, ``bool`` a boolean."""
    if get_origin(hint) is typing.Literal:
        return choice(*get_args(hint))
    if hint is bool:
        return boolean
    raise TypeError(f"no converter for {hint!r}: give one")


class Default(typing.NamedTuple):
    """A default that depends on other values or on the machine: ``compute(values, context)``
    returns (value, why); ``shown`` is how the docs print it."""

    compute: Callable[[dict[str, Any], Any], tuple[Any, str]]
    shown: str


def setting(
    env: str,
    default: Any,
    help: str,
    *,
    convert: Converter | None = None,
    flag: str = "",
    secret: bool = False,
) -> Any:
    """Declare one setting as a field of ``Settings``: its variable, default and help.

    The converter comes from the field's type (a ``Literal`` or ``bool``) unless given.
    ``flag`` is the command-line flag that overrides it (``--port``).
    """
    meta = {"env": env, "default": default, "help": help, "convert": convert, "flag": flag}
    return field(metadata={"setting": {**meta, "secret": secret}}, repr=not secret)


class Setting(typing.NamedTuple):
    """A declaration, read back from the field of ``Settings`` that holds it."""

    attr: str
    env: str
    convert: Converter
    default: Any
    help: str
    flag: str
    secret: bool

    @property
    def shown_default(self) -> str:
        if isinstance(self.default, Default):
            return self.default.shown
        if isinstance(self.default, bool):
            return str(self.default).lower()
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def default_for(self, values: dict[str, Any], context: Any) -> tuple[Any, str]:
        if isinstance(self.default, Default):
            return self.default.compute(values, context)
        return self.default, ""


def declarations(cls: type) -> tuple[Setting, ...]:
    hints = typing.get_type_hints(cls)
    found = []
    for f in cls.__dataclass_fields__.values():  # type: ignore[attr-defined]
        meta = _meta(f)
        if meta is not None:
            convert = meta["convert"] or from_type(hints[f.name])
            found.append(
                Setting(
                    f.name,
                    meta["env"],
                    convert,
                    meta["default"],
                    meta["help"],
                    meta["flag"],
                    meta["secret"],
                )
            )
    return tuple(found)


def _meta(f: Field) -> dict[str, Any] | None:
    return f.metadata.get("setting")
