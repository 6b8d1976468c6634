"""The Jinja environment for C templates: StrictUndefined, so a missing variable is an error, never
silently empty C."""

from __future__ import annotations

import functools

import jinja2


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ternkit", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["abi"] = env.get_template("common/abi.j2").module   # the kernel ABI, for every template
    return env


def abi():
    """The kernel ABI macros of `common/abi.j2` (e.g. `abi().kernel(name)`), for Python-side C text."""
    return environment().globals["abi"]


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
