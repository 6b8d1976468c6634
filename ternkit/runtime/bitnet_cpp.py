"""bitnet.cpp's I2_S kernels as an in-process baseline, built from the user's own bitnet.cpp checkout.

ternkit ships no bitnet.cpp code: `BitnetI2S` compiles the checkout's `src/ggml-bitnet-mad.cpp` and
`include/gemm-config.h` as they are (with a few stand-in ggml declarations, templates/bench/bitnet_cpp)
plus a small driver that walks a matrix the way bitnet.cpp's `ggml_gemm_i2_i8_s` does, and loads the
library with cffi. Benchmarks then time our kernels and bitnet.cpp's in one process on the same
operands (`benchmarks/avx2_kernels.py --bitnet-cpp PATH`), each checked bit-exact first.

    git clone https://github.com/microsoft/BitNet      # any checkout with src/ggml-bitnet-mad.cpp
    python benchmarks/avx2_kernels.py --bitnet-cpp BitNet --kernels bitnet:i2_s,avx2:i2
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

import cffi
import numpy as np

from ternkit.codegen.jinja import render
from ternkit.errors import ShapeError, TernkitError, ToolchainError
from ternkit.outputs import atomic_path
from ternkit.toolchain.cffi_build import cache_dir

SOURCE = Path("src/ggml-bitnet-mad.cpp")
CONFIG = Path("include/gemm-config.h")
SHIM = ("ggml-bitnet.h", "ggml-quants.h", "ggml-cpu-impl.h")
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w")   # bitnet.cpp's own -O3 -march=native
CDEF = """
int32_t tk_i2s_config(int32_t which);
size_t tk_i2s_pack(const float *w, uint8_t *dst, int64_t M, int64_t K);
void tk_i2s_matmul(const uint8_t *w, const int8_t *x, float *s, int32_t n, int32_t M, int32_t K);
"""


def checkout(path: str | os.PathLike | None) -> Path:
    """The bitnet.cpp checkout at `path` (or $TERNKIT_BITNET_CPP), checked to hold the I2_S sources."""
    path = path or os.environ.get("TERNKIT_BITNET_CPP")
    if not path:
        raise TernkitError("bitnet:i2_s needs a bitnet.cpp checkout: pass --bitnet-cpp PATH (git clone "
                           "https://github.com/microsoft/BitNet) or set TERNKIT_BITNET_CPP")
    root = Path(path).expanduser()
    missing = [str(p) for p in (SOURCE, CONFIG) if not (root / p).is_file()]
    if missing:
        raise TernkitError(f"{root} is not a bitnet.cpp checkout: {', '.join(missing)} missing (git clone "
                           "https://github.com/microsoft/BitNet)")
    return root.resolve()


def _library(root: Path) -> Path:
    """The compiled library for this checkout's sources (cached by their contents)."""
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx.split()[0]) is None:
        raise ToolchainError(f"C++ compiler {cxx!r} not found: install it (`apt-get install g++`) or set CXX")
    driver = render("bench/bitnet_cpp/driver.cpp.j2", source=str(root / SOURCE))
    shims = {name: render(f"bench/bitnet_cpp/{name}") for name in SHIM}
    key = hashlib.sha256("\0".join([(root / SOURCE).read_text(), (root / CONFIG).read_text(), driver,
                                    *shims.values(), cxx, *FLAGS]).encode()).hexdigest()[:20]
    target = cache_dir() / f"_ternkit_bitnet_i2s_{key}.so"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        for name, text in shims.items():
            (Path(tmp) / name).write_text(text)
        (Path(tmp) / "driver.cpp").write_text(driver)
        with atomic_path(target) as staged:
            done = subprocess.run([*cxx.split(), *FLAGS, f"-I{tmp}", f"-I{root / 'include'}", f"-I{root / 'src'}",
                                   str(Path(tmp) / "driver.cpp"), "-o", str(staged)], capture_output=True, text=True)
            if done.returncode:
                lines = done.stderr.strip().splitlines() or ["no output"]
                log = next((line for line in lines if "error" in line), lines[0])
                raise TernkitError(f"building bitnet.cpp's I2_S kernels from {root} failed: {log}")
    return target


@functools.lru_cache(maxsize=None)
def _load(root: Path) -> tuple[cffi.FFI, object]:
    """(ffi, library) for a checkout, built and opened once per process (every matrix shares them)."""
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    return ffi, ffi.dlopen(str(_library(root)))


class BitnetI2S:
    """bitnet.cpp's I2_S GEMV/GEMM for one ternary matrix: `kern(x, out=...)` -> float32 [n, M] of
    sum(code * x) (code = w + 1), as its vec_dot returns; `integer(x, raw)` -> the int32 product."""

    def __init__(self, w_q: np.ndarray, root: str | os.PathLike | None = None) -> None:
        self.M, self.K = w_q.shape
        self.ffi, self.lib = _load(checkout(root))
        self.parallel, self.block = self.lib.tk_i2s_config(0), self.lib.tk_i2s_config(1)
        qk = self.lib.tk_i2s_config(3)
        if self.K % qk:
            raise ShapeError(f"bitnet.cpp I2_S needs K a multiple of {qk}; got {self.K}")
        packed = np.zeros(self.M * self.K // 4 + 32, np.uint8)    # + its 32-byte scale tail
        self.lib.tk_i2s_pack(self.ffi.from_buffer("float[]", np.ascontiguousarray(w_q, np.float32)),
                             self.ffi.from_buffer("uint8_t[]", packed), self.M, self.K)
        self.with_packed(packed, into=self)

    def with_packed(self, packed: np.ndarray, into: BitnetI2S | None = None) -> BitnetI2S:
        """The same kernel on another copy of its packed weights (DRAM benchmarks)."""
        other = into or copy.copy(self)
        other.packed, other._w = packed, self.ffi.from_buffer("uint8_t[]", packed)
        return other

    def __call__(self, x: np.ndarray, *, threads: int | str = 1, out: np.ndarray | None = None) -> np.ndarray:
        if threads not in (1, "auto"):
            raise TernkitError("bitnet:i2_s runs on one thread here (bitnet.cpp threads through ggml)")
        if out is None:
            out = np.empty((x.shape[0], self.M), np.float32)
        self.bound(x, out)()
        return out

    def bound(self, x: np.ndarray, out: np.ndarray) -> Callable[[], object]:
        """The C call with `x` and `out` checked and bound once (benchmarks time the kernel, not Python)."""
        n = x.shape[0]
        if x.dtype != np.int8 or x.shape != (n, self.K) or not x.flags.c_contiguous:
            raise ShapeError(f"bitnet:i2_s: activations must be C-contiguous int8 [n, {self.K}]")
        if n != 1 and (n % self.parallel or self.block % self.parallel):
            raise ShapeError(f"bitnet.cpp's I2_S GEMM takes 1 token or a multiple of {self.parallel}; got {n}")
        if out.dtype != np.float32 or out.shape != (n, self.M) or not out.flags.c_contiguous:
            raise ShapeError(f"bitnet:i2_s: out must be C-contiguous float32 [{n}, {self.M}]")
        return functools.partial(self.lib.tk_i2s_matmul, self._w, self.ffi.from_buffer("int8_t[]", x),
                                 self.ffi.from_buffer("float[]", out, require_writable=True), n, self.M, self.K)

    @staticmethod
    def integer(x: np.ndarray, raw: np.ndarray) -> np.ndarray:
        return raw.astype(np.int32) - x.sum(axis=1, dtype=np.int32)[:, None]   # exact: |sums| < 2**24
