"""User-facing errors: one clear message naming the problem and the fix."""


class TernkitError(Exception):
    """An error the user can act on. The CLI prints its message on one line and exits non-zero."""


class ConfigError(TernkitError):
    """A bad field in a YAML spec; the message starts with the field's path, e.g. `layers[3].ffn.hidden`."""


class ShapeError(TernkitError, ValueError):
    """Arrays whose shapes or dtypes do not fit the operation."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, after what could be saved was saved: the CLI prints the message on one line, exits 130."""


class ToolchainError(TernkitError):
    """A compiler, emulator or CPU feature that a target needs is missing."""
