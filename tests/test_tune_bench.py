"""ternkit tune / bench / generate --tuning on a tiny model: the winners land in tuning.yaml, the
generator uses them, bench prints the side-by-side table and writes the plot."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from ternkit.cli import main
from ternkit.codegen import tuning
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.targets import get_target
from ternkit.errors import TernkitError
from ternkit.runtime import bench, pool

AVX512 = get_target("avx512")
needs_avx512 = pytest.mark.skipif(not AVX512.runs_natively(), reason=str(AVX512.isa.missing("avx512")))


def test_tuning_apply_and_bad_files(tmp_path):
    spec = AVX512.specialise(KernelSpec(64, 128, 1))
    plan = Plan("avx512", "m", [spec], {spec: ["a"]})
    tuned = tuning.apply(plan, AVX512, {"avx512": {spec.name: {"rows": 2, "prefetch": 0}}})
    assert tuned.kernels[0].tile("rows") == 2 and tuned.kernels[0].tile("prefetch") == 0
    assert tuned.users[tuned.kernels[0]] == ["a"]
    with pytest.raises(TernkitError, match="rows must be one of"):
        tuning.apply(plan, AVX512, {"avx512": {spec.name: {"rows": 5}}})
    bad = tmp_path / "tuning.yaml"
    bad.write_text("targets: [1, 2]\n")
    with pytest.raises(TernkitError, match="expected a mapping"):
        tuning.load(bad)


def test_tuned_format_choice_per_shape_unless_forced(tmp_path, capsys, monkeypatch):
    """`tune` without --format tunes every shape in every format and records the fastest per shape;
    `generate` emits that format there unless --format forces one. The timings are given (measuring is
    `tune_spec`'s job, run for real by the README's `ternkit tune` line), so the winners are known."""
    from ternkit.runtime import tune

    avx2 = get_target("avx2")
    if avx2.unavailable_reason():
        pytest.skip(avx2.unavailable_reason())
    winner = {"gemv_m64_k128_a8": "tl2", "gemv_m128_k352_a8": "b3", "gemv_m352_k128_a8": "tl1"}   # else i2
    tuned = []

    def given_timings(target, spec, *, dram_mb, log):
        tuned.append((spec.shape_key, spec.weight_format))
        fast = winner.get(spec.shape_key, "i2") == spec.weight_format
        return tune.TuneResult(spec=target.specialise(spec), tiling={}, default_seconds=2e-6,
                               best_seconds=1e-6 if fast else 1.5e-6, tried=1)

    monkeypatch.setattr(tune, "tune_spec", given_timings)
    out = tmp_path / "gen"
    assert main(["tune", "tiny", "--target", "avx2", "--tokens", "1", "--dram-mb", "0", "-o", str(out)]) == 0
    assert "other formats (us)" in capsys.readouterr().out
    shapes = {"gemv_m128_k128_a8", "gemv_m64_k128_a8", "gemv_m352_k128_a8", "gemv_m128_k352_a8"}
    assert sorted(tuned) == sorted((s, f) for s in shapes for f in avx2.formats)   # every shape in every format
    data = yaml.safe_load((out / "tuning.yaml").read_text())
    assert data["targets"]["avx2"]["formats"] == {s: winner.get(s, "i2") for s in shapes}
    assert main(["generate", "tiny", "--target", "avx2", "--tokens", "1", "-o", str(out), "--force"]) == 0
    src = (out / "ternkit_kernels.c").read_text()
    for name in ("gemv_m64_k128_tl2_a8", "gemv_m128_k352_b3_a8", "gemv_m352_k128_tl1_a8", "gemv_m128_k128_i2_a8"):
        assert f"void {name}(" in src
    assert main(["generate", "tiny", "--target", "avx2", "--format", "tl1", "--tokens", "1", "-o", str(out),
                 "--force"]) == 0
    src = (out / "ternkit_kernels.c").read_text()
    assert "void gemv_m64_k128_tl1_a8(" in src and "tl2_a8(" not in src and "b3_a8(" not in src


@needs_avx512
def test_tune_then_generate_uses_winners(tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["tune", "tiny", "--target", "avx512", "--format", "i2", "--tokens", "1", "--dram-mb", "0",
                 "-o", str(out)]) == 0
    data = yaml.safe_load((out / "tuning.yaml").read_text())
    assert set(data["targets"]["avx512"]) == {"gemv_m128_k128_i2_a8", "gemv_m64_k128_i2_a8",
                                              "gemv_m352_k128_i2_a8", "gemv_m128_k352_i2_a8"}
    # force a recognisable tiling, then generate into the same folder: it is found and kept
    data["targets"]["avx512"]["gemv_m64_k128_i2_a8"] = {"rows": 3, "prefetch": 0}
    (out / "tuning.yaml").write_text(yaml.safe_dump(data))
    assert main(["generate", "tiny", "--target", "avx512", "--tokens", "1", "-o", str(out), "--force"]) == 0
    assert "tilings from" in capsys.readouterr().out
    src = (out / "ternkit_kernels.c").read_text()
    assert "3 rows at a time" in src and (out / "tuning.yaml").exists()
    if shutil.which("make"):   # the emitted Makefile builds it with -Wall -Wextra -Werror and the AVX-512 flags
        r = subprocess.run(["make"], cwd=out, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


@needs_avx512
def test_bench_table_and_plot(tmp_path, capsys):
    png = tmp_path / "gemv.png"
    assert main(["bench", "tiny", "--target", "avx512", "--tokens", "1,16", "--repeat", "2", "--dram-mb", "8",
                 "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    for word in ("avx512/i2", "i2s/i2", "tq2_0 (ggml)", "scalar/i2", "numpy f32", "stream read", "dram", "% roofline"):
        assert word in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert bench.int8_peak_gops() > 0


def test_bench_every_thread_count_with_progress_and_ratios(capsys):
    avx2 = get_target("avx2")
    if avx2.unavailable_reason():
        pytest.skip(avx2.unavailable_reason())
    assert main(["bench", "tiny", "--target", "avx2", "--tokens", "1", "--threads", "1,auto", "--repeat", "1",
                 "--dram-mb", "0", "--no-scalar"]) == 0
    captured = capsys.readouterr()
    assert "bench" in captured.err                     # the progress bar
    header = next(line for line in captured.out.splitlines() if line.startswith("M x K"))
    for col in ("threads", "used", "GB/s", "% roofline", "x numpy", "x tq2_0", "scaling"):
        assert col in header

    rows = bench.measure([(96, 512)], [1, 4], [avx2], threads=[1, 2, "auto"], dram_mb=4, scalar=False, repeat=2,
                         progress=False)
    for n in (1, 4):
        for label in ("1", "2", "auto"):
            got = {r.kernel for r in rows if (r.n, r.threads) == (n, label)}
            assert {"avx2/i2", "avx2/tl1", "avx2/tl2", "i2s/i2", bench.TQ2_0, "numpy f32"} <= got
            assert ("stream read" in got) == (n == 1)          # the bandwidth roofline is for GEMV
    for r in rows:
        assert 1 <= r.used <= pool.usable_cores()
        if r.kernel not in ("numpy f32", "stream read"):
            assert r.tq2_0 and (r.roofline or r.n > 1) and (r.mode == "dram" or r.numpy)
            assert r.single and (r.threads != "1" or r.single == r.seconds)
    assert {r.mode for r in rows if r.n == 1} == {"hot", "dram"} and {r.mode for r in rows if r.n == 4} == {"hot"}
    table = bench.format_table(rows)
    assert table.count(bench.TQ2_0) == len([r for r in rows if r.kernel == bench.TQ2_0])


def test_dram_copies_in_huge_page_memory():
    """The benchmarks' DRAM copies (and the stream read's buffers) lie in 2 MiB-aligned huge-page regions,
    each copy on a cache line, many small copies in one region (not a mapping each: a 256 MB working set
    of 1 KiB matrices is 262,144 copies); they equal their source and kernels run on them bit-exactly."""
    import numpy as np

    from ternkit.runtime.hugepages import ALIGN, HUGE_PAGE, HugeArena, huge_empty
    from ternkit.runtime.kernels import compile_plan

    z = huge_empty(3 << 20)
    assert z.nbytes == 3 << 20 and not z.any() and z.ctypes.data % HUGE_PAGE == 0
    z[-1] = 7
    arena = HugeArena(chunk=4 << 20)
    a = np.arange(-500, 500, dtype=np.int32).reshape(10, 100)
    c = arena.copy(a)
    assert c.dtype == a.dtype and c.shape == a.shape and c.flags.c_contiguous and (c == a).all()
    assert c.ctypes.data % HUGE_PAGE == 0                   # the first copy opens a region
    small = [arena.copy(np.full(1000, i % 256, np.uint8)) for i in range(5000)]   # 5 MB: two 4 MiB regions
    assert all(p.ctypes.data % ALIGN == 0 and (p == i % 256).all() for i, p in enumerate(small))

    def region(v):      # the mapping a view lies in: the end of its chain of bases
        while isinstance(v, np.ndarray):
            v = v.base
        return id(v)

    assert len({region(p) for p in [c, *small]}) == 2, "small copies share their regions"
    big = arena.copy(np.ones(5 << 20, np.uint8))            # larger than a chunk: a region of its own
    assert big.ctypes.data % HUGE_PAGE == 0 and big.all()
    copies = bench._copies(np.ones(1000, np.uint8), 5000)
    assert len(copies) == 5 and all(p.ctypes.data % ALIGN == 0 and (p == 1).all() for p in copies)
    stream = bench.Stream([np.full(1000, 3, np.uint8)] * 2)
    assert all(b.ctypes.data % ALIGN == 0 and (b[:1000] == 3).all() and not b[1000:].any() for b in stream.buffers)

    rng = np.random.default_rng(1)
    scalar = get_target("scalar")
    spec = scalar.specialise(KernelSpec(40, 96, 1))
    w, x = rng.integers(-1, 2, (40, 96)).astype(np.int8), rng.integers(-128, 128, (1, 96)).astype(np.int8)
    kern = compile_plan(Plan("scalar", "huge", [spec]), scalar).kernel(spec, w)
    assert (kern.with_packed(HugeArena().copy(kern.packed))(x, threads=1) == kern(x, threads=1)).all()


def test_stream_read_reads_every_line_once_as_any_number_of_streams():
    """The roofline's read as 1 .. MAX_STREAMS sequential streams at once covers every 64-byte line once
    (the same XOR checksum whatever the count), and the header line names the count it chose."""
    import numpy as np

    mod, _ = bench.roofline_module()
    buf = np.random.default_rng(0).integers(0, 256, 64 * 12 * 50, dtype=np.uint8)   # every count: whole spans
    ptr = mod.ffi.from_buffer("uint8_t[]", buf)
    sums = {k: mod.lib.ternkit_stream_read(ptr, buf.nbytes, k) for k in range(1, bench.MAX_STREAMS + 1)}
    assert len(set(sums.values())) == 1
    buf[64 * 599] ^= 1                                   # the last line's first byte
    assert all(mod.lib.ternkit_stream_read(ptr, buf.nbytes, k) != sums[1] for k in sums)
    assert 1 <= bench.best_streams() <= bench.MAX_STREAMS and len(bench.read_streams()) == bench.MAX_STREAMS
    assert f"as {bench.best_streams()}" in bench.streams_line()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("width", [512, 256, 0])
def test_roofline_source_compiles_for_every_width(tmp_path, width):
    """The roofline kernels of every ISA width compile (AVX-512 too, compile-only, on a machine without it)."""
    from ternkit.codegen.jinja import render

    src = tmp_path / "roofline.c"
    src.write_text(render("bench/roofline.c.j2", width=width, vnni=width == 512, chains=12, ops_per_step=768))
    flags = {512: AVX512.isa.flags, 256: get_target("avx2").isa.flags, 0: ()}[width]
    done = subprocess.run(["gcc", "-O2", "-Wall", "-Werror", *flags, "-c", str(src), "-o", str(tmp_path / "r.o")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
