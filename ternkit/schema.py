"""Config schemas on pydantic: the field types every YAML config shares, with the project's messages, and
the turning of pydantic's errors into path-named one-line problems (`array.inputs: must be ...`).

A config section is a `@section` class (a frozen pydantic dataclass): attribute access, `dataclasses.replace`
and `asdict` work as on any dataclass; each field's default is declared once, on the class; an unknown key
or a section that is not a mapping is refused naming its path; a partial mapping given for a field whose
default is a section fills the rest from that default."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Annotated, Any, Callable, ClassVar

from pydantic import PlainValidator, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass as _pydantic_dataclass
from pydantic.fields import FieldInfo
from pydantic_core import ArgsKwargs, PydanticCustomError, PydanticUndefined

from ternkit.errors import ConfigError

# a required key absent from the YAML: its field's validator says what was expected
MISSING = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


def problems(*found: tuple[str, str]) -> PydanticCustomError:
    """An error for (field, message) pairs relative to the section being validated ('' = the section)."""
    text = "; ".join(m for _, m in found).replace("{", "{{").replace("}", "}}")
    return PydanticCustomError("ternkit", text, {"problems": list(found)})


def problem(field: str, message: str) -> PydanticCustomError:
    return problems((field, message))


class Section:
    """Base of a config section: before its fields are checked, None is an empty mapping and anything else
    must be a mapping of known keys (or, with `open_keys`, other keys are ignored). Keys left out get their
    field default (a section default is the base that a partial mapping updates), or MISSING so the
    field's own check says what is required."""

    open_keys: ClassVar[bool] = False

    @classmethod
    def prepare(cls, data: dict) -> dict:
        """The mapping as given, before its keys are checked: derive defaults or refuse combinations here."""
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _mapping(cls, data: Any, handler: Callable) -> Any:
        if isinstance(data, ArgsKwargs) or dataclasses.is_dataclass(data):
            return handler(data)          # built in code (`Buffer(64, 256, 2)`, `replace`): fields only
        if data is None or data is MISSING:
            data = {}
        if not isinstance(data, dict):
            raise problem("", "must be a mapping")
        data = cls.prepare(data)
        known = {f.name: f for f in dataclasses.fields(cls) if f.init}
        values = {k: v for k, v in data.items() if k in known}
        for name, f in known.items():
            if name not in values:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    values[name] = MISSING
            elif dataclasses.is_dataclass(f.default) and isinstance(values[name], dict):
                values[name] = {**_own_values(f.default), **values[name]}
        unknown = [] if cls.open_keys else [k for k in data if k not in known]
        if not unknown:
            return handler(values)
        expected = ", ".join(sorted(known))
        found = [{"type": problems(*((str(k), f"unknown field (expected one of: {expected})") for k in unknown)),
                  "loc": (), "input": data}]
        try:
            handler(values)               # the known fields' problems too, so all are listed at once
        except ValidationError as exc:
            found += [_again(err) for err in exc.errors(include_url=False)]
        raise ValidationError.from_exception_data(cls.__name__, found)


def _again(err: dict) -> dict:
    """A caught pydantic error in the form that raising it again takes."""
    template = err["msg"].replace("{", "{{").replace("}", "}}")
    return {"type": PydanticCustomError(err["type"], template, err.get("ctx")), "loc": err["loc"],
            "input": err.get("input")}


def _own_values(default: Any) -> dict:
    """The values of a section default that its class would not give by itself (e.g. the weight buffer's size)."""
    return {f.name: getattr(default, f.name) for f in dataclasses.fields(default)
            if getattr(default, f.name) != f.default}


def section(cls=None, **options):
    """Declare a config section: `@section class Array(Section): ...` (a frozen pydantic dataclass)."""
    def wrap(cls):
        cls = _pydantic_dataclass(frozen=True, **options)(cls)
        init, names = cls.__init__, [f.name for f in dataclasses.fields(cls) if f.init]

        @functools.wraps(init)
        def checked_init(self, *args, **kwargs):
            """Built in code (an importer, `replace`): a bad value is a ConfigError naming the class and field."""
            try:
                init(self, **dict(zip(names, args)), **kwargs)
            except ValidationError as exc:
                raise ConfigError(f"{type(self).__name__}: " + "; ".join(lines(located(exc)))) from None

        cls.__init__ = checked_init
        return cls

    return wrap(cls) if cls is not None else wrap


# --- field types: each a check that returns the value or raises the message the user reads -------------

def _checked(check: Callable[[Any], Any]) -> PlainValidator:
    def run(v):
        try:
            return check(v)
        except PydanticCustomError:
            raise
        except ValueError as exc:
            raise problem("", str(exc)) from None
    return PlainValidator(run)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _positive_int(v: Any) -> int:
    if v is MISSING:
        raise ValueError("is required (a positive int)")
    if not _is_int(v) or v <= 0:
        raise ValueError(f"must be a positive int, got {v!r}")
    return v


def _optional_positive_int(v: Any) -> int | None:
    return None if v is None else _positive_int(v)


def _non_negative_int(v: Any) -> int:
    if not _is_int(v) or v < 0:
        raise ValueError(f"must be a non-negative int, got {v!r}")
    return v


def _int(v: Any) -> int:
    if not _is_int(v):
        raise ValueError(f"must be an int, got {v!r}")
    return v


def _positive_number(v: Any) -> float:
    """Finite: NaN or inf would give silent zero or infinite results downstream."""
    if _is_number(v) and not math.isfinite(v):
        raise ValueError(f"must be a finite positive number, got {v!r}")
    if not _is_number(v) or v <= 0:
        raise ValueError(f"must be a positive number, got {v!r}")
    return float(v)


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {v!r}")
    return v


def _string(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("must be a string")
    return v


def _name(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"must be a non-empty string, got {v!r}")
    return v


PositiveInt = Annotated[int, _checked(_positive_int)]
OptionalPositiveInt = Annotated[int | None, _checked(_optional_positive_int)]
NonNegativeInt = Annotated[int, _checked(_non_negative_int)]
Int = Annotated[int, _checked(_int)]
PositiveNumber = Annotated[float, _checked(_positive_number)]
Bool = Annotated[bool, _checked(_boolean)]
Text = Annotated[str, _checked(_string)]
Name = Annotated[str, _checked(_name)]


def one_of(*options: Any) -> Any:
    """A value from `options` ('must be one of a, b, got c')."""
    def check(v):
        if v not in options or isinstance(v, bool) != any(isinstance(o, bool) for o in options):
            raise ValueError(f"must be one of {', '.join(map(str, options))}, got {v!r}")
        return v
    return Annotated[Any, _checked(check)]


def number(lo: float = 0.0, lo_ok: bool = True, hi: float | None = None) -> Any:
    """A finite number in a range ('must be a number > 0.0, got -1')."""
    def check(v):
        ok = _is_number(v) and math.isfinite(v) and (v >= lo if lo_ok else v > lo) and (hi is None or v <= hi)
        if not ok:
            rng = f"{'>=' if lo_ok else '>'} {lo}" + (f" and <= {hi}" if hi is not None else "")
            raise ValueError(f"must be a number {rng}, got {v!r}")
        return float(v)
    return Annotated[float, _checked(check)]


def nonempty(what: str) -> Any:
    """A non-empty string ('must be <what>, got ...')."""
    def check(v):
        if not isinstance(v, str) or not v:
            raise ValueError(f"must be {what}, got {None if v is MISSING else v!r}")
        return v
    return Annotated[str, _checked(check)]


def checked(check: Callable[[Any], Any], type_: Any = Any) -> Any:
    """A field checked by `check` (returns the value, or raises ValueError with the user's message)."""
    return Annotated[type_, _checked(check)]


# --- errors -------------------------------------------------------------------------------------------

def dotted(loc: tuple) -> str:
    """('layers', 3, 'ffn', 'hidden') -> 'layers[3].ffn.hidden'."""
    out = ""
    for part in loc:
        if part == "":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def located(exc: ValidationError) -> list[tuple[str, str]]:
    """Each problem as (path, message), in the order pydantic found them, without repeats."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        found = (err.get("ctx") or {}).get("problems")
        if found is None:       # one of pydantic's own checks: keep its words, show the input
            found = [("", f"{err['msg'][0].lower()}{err['msg'][1:]}, got {err.get('input')!r}")]
        for field, message in found:
            out.append((dotted(loc + tuple(p for p in str(field).split(".") if p)), message))
    return list(dict.fromkeys(out))


def lines(found: list[tuple[str, str]]) -> list[str]:
    return [f"{path}: {message}" if path else message for path, message in found]


@functools.lru_cache(maxsize=None)
def _adapter(schema: Any) -> TypeAdapter:
    return TypeAdapter(schema)


def check(schema: Any, data: Any, context: dict | None = None) -> tuple[Any, list[tuple[str, str]]]:
    """(`data` as an instance of `schema`, []) or (None, its problems as (path, message))."""
    try:
        return _adapter(schema).validate_python(data, context=context), []
    except ValidationError as exc:
        return None, located(exc)


def validate(schema: Any, data: Any, heading: str, sep: str = "; ", context: dict | None = None) -> Any:
    """`data` as an instance of `schema`, or ConfigError(heading + every problem joined by `sep`)."""
    value, found = check(schema, data, context)
    if found:
        raise ConfigError(heading + sep.join(lines(found)))
    return value


def defaults(cls) -> dict[str, Any]:
    """{field: default} of a section, nested sections as dicts (fields without a default left out)."""
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default.default if isinstance(f.default, FieldInfo) else f.default
        if default is not dataclasses.MISSING and default is not PydanticUndefined:
            out[f.name] = dataclasses.asdict(default) if dataclasses.is_dataclass(default) else default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out
