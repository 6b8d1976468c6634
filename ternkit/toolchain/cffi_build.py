"""Build C with cffi (API mode) and cache the built module.

Every module is compiled with the toolchain's WARNINGS. The cache key is the hash of the C declarations, the source, the compile flags, the compiler's
identity and the Python/cffi versions. Modules live in `$TERNKIT_CACHE_DIR` (default
`$XDG_CACHE_HOME/ternkit` or `~/.cache/ternkit`). Each build happens in its own temporary folder and
the finished shared object is moved into place with an atomic rename, so two processes building the
same module at once both succeed and never load a half-written file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import cffi

from ternkit.errors import TernkitError, ToolchainError
from ternkit.outputs import atomic_path
from ternkit.toolchain import WARNINGS, compiler


def cache_dir() -> Path:
    env = os.environ.get("TERNKIT_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ternkit"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable_cache(base, exc) from None
    return base


def check_cache() -> Path:
    """Before any work: the cache folder exists and a file can be created in it (commands that compile
    call this first, so a read-only cache is one line up front, not an error half-way)."""
    base = cache_dir()
    try:
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _unwritable_cache(base, exc) from None
    return base


def _unwritable_cache(base: Path, exc: OSError) -> TernkitError:
    return TernkitError(f"compiler cache {base}: cannot write there ({exc.strerror}); set TERNKIT_CACHE_DIR to a "
                        "writable folder")


@functools.lru_cache(maxsize=None)
def compiler_identity(cc: str) -> str:
    """First line of `cc --version`; raises a clear error when the compiler is missing."""
    exe = cc.split()[0]
    if shutil.which(exe) is None:
        raise ToolchainError(f"C compiler {exe!r} not found: install it (`apt-get install gcc`) or set CC to one")
    out = subprocess.run([*cc.split(), "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else exe


def build_module(prefix: str, cdef: str, source: str, *, flags: tuple[str, ...] = ("-O3",),
                 include_dirs: tuple[str, ...] = ()) -> ModuleType:
    """Compile `source` exposing the declarations in `cdef`; return the module (`.ffi`, `.lib`)."""
    flags = (*flags, *WARNINGS)
    cc = compiler()
    key_text = "\0".join([cdef, source, " ".join(flags), " ".join(include_dirs), compiler_identity(cc),
                          sys.version, cffi.__version__])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:20]
    modname = f"_ternkit_{prefix}_{key}"
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    target = cache_dir() / f"{modname}{suffix}"
    if not target.exists():
        _compile(modname, cdef, source, flags, include_dirs, target)
    return _load(modname, target)


def _compile(modname, cdef, source, flags, include_dirs, target: Path) -> None:
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(modname, source, extra_compile_args=list(flags), include_dirs=list(include_dirs))
    try:   # before compiling: a read-only cache is one clear line, not a traceback after the work
        workdir = tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-")
    except OSError as exc:
        raise _unwritable_cache(target.parent, exc) from None
    with workdir as tmp:
        try:
            built = ffi.compile(tmpdir=tmp, verbose=False)
        except Exception as exc:  # distutils/setuptools wrap compiler failures in several types
            log = _compiler_output(exc)
            raise TernkitError(f"compiling {modname} failed: {log}") from None
        with atomic_path(target) as staged:   # concurrent builders never see a partial file
            shutil.copyfile(built, staged)


def _compiler_output(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def _load(modname: str, path: Path) -> ModuleType:
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[modname] = module
    return module
