"""Weight formats: exact round trips, sizes, errors, and byte identity with ggml (via `gguf`)."""

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import quantize as gguf_quantize
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ternkit import formats
from ternkit.errors import ShapeError, TernkitError


def ternary(shape):
    return arrays(np.int8, shape, elements=st.integers(-1, 1))


@st.composite
def ggml_case(draw):
    m, nb = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    w = draw(ternary((m, 256 * nb)))
    d = draw(arrays(np.float16, (m, nb), elements=st.floats(2**-10, 1000, width=16))).astype(np.float32)
    return w, d


@pytest.mark.parametrize("name", formats.GGML_FORMATS)
@settings(max_examples=30, deadline=None)
@given(case=ggml_case())
def test_ggml_round_trip_and_byte_identity(name, case):
    w, d = case
    qtype = GGMLQuantizationType[name.upper()]
    data = formats.pack(name, w, d)
    assert data.dtype == np.uint8 and data.size == formats.get_format(name).nbytes(*w.shape)
    back, scales = formats.unpack(name, data, *w.shape)
    assert np.array_equal(back, w) and np.array_equal(scales, d)
    # floats built so ggml's own quantizer sees the same ternary values and block scale: w * d
    x = (w * np.repeat(d, 256, axis=1)).astype(np.float32)
    live = np.abs(w.reshape(w.shape[0], -1, 256)).max(axis=2) > 0  # ggml writes d = 0 for an all-zero block
    assert gguf_quantize(x, qtype).tobytes() == formats.pack(name, w, np.where(live, d, 0)).tobytes()
    np.testing.assert_array_equal(gguf_dequantize(data.reshape(w.shape[0], -1), qtype), x)


@pytest.mark.parametrize("name", formats.GGML_FORMATS)
def test_ggml_scalar_scale_sizes_and_errors(name):
    w = np.random.default_rng(1).integers(-1, 2, size=(3, 512)).astype(np.int8)
    back, scales = formats.unpack(name, formats.pack(name, w, 0.5), 3, 512)
    assert np.array_equal(back, w) and np.all(scales == 0.5) and scales.shape == (3, 2)
    assert formats.get_format(name).nbytes(3, 512) * 8 / w.size == pytest.approx(formats.bits_per_weight(name))
    with pytest.raises(ShapeError, match="K = 300 is not a multiple of 256"):
        formats.pack(name, np.zeros((4, 300), np.int8), 1.0)
    with pytest.raises(ShapeError, match="broadcastable"):
        formats.pack(name, np.zeros((4, 512), np.int8), np.ones(3))
    with pytest.raises(ShapeError, match="fp16"):
        formats.pack(name, np.zeros((4, 512), np.int8), 1e6)
    with pytest.raises(ShapeError, match="pass scale="):
        formats.pack(name, np.zeros((4, 512), np.int8))


def test_bits_per_weight():
    bpw = {name: formats.bits_per_weight(name) for name in formats.FORMATS}
    assert bpw == pytest.approx({"i2": 2.0, "tl1": 2.0, "tl2": 5 / 3, "b3": 1.6, "tq1_0": 1.6875, "tq2_0": 2.0625})
    assert formats.get_format("b3").nbytes(4, 320) * 8 / (4 * 320) == pytest.approx(1.6)
    assert formats.get_format("tl2").nbytes(4, 48) * 8 / (4 * 48) == pytest.approx(5 / 3)


def test_tl2_sign_unit_layout_bytes():
    """sign_unit=8: per 64-row block, units of 8 groups: 32 index bytes a group (row i low nibble, row
    i + 32 high nibble), then 64 sign bytes with group j of the unit in bit 7 - j; a short last unit."""
    tl2 = formats.get_format("tl2")
    K = 3 * 10                                            # 10 groups: a unit of 8, then one of 2
    w = np.zeros((64, K), np.int8)
    w[0, 0:3] = (1, 0, -1)                                # row 0, group 0: index 8, sign 0
    w[33, 3:6] = (-1, 0, 1)                               # row 33, group 1: index 8, sign 1
    w[5, 27:30] = (0, -1, 0)                              # row 5, group 9 (unit 1, j = 1): index 3, sign 1
    data = formats.pack("tl2", w, m_block=64, sign_unit=8)
    assert data.size == tl2.nbytes(64, K, m_block=64, sign_unit=8) == 10 * 32 + 2 * 64
    unit0, unit1 = data[:8 * 32 + 64], data[8 * 32 + 64:]
    assert unit0[0] == 8 and unit0[32 + 1] == 8 << 4 and unit0[256 + 33] == 1 << 6
    assert unit1[32 + 5] == 3 and unit1[64 + 5] == 1 << 6
    assert np.count_nonzero(data) == 5
    assert np.array_equal(formats.unpack("tl2", data, 64, K, m_block=64, sign_unit=8), w)
    bad = data.copy()
    bad[-64] |= 1                                         # a sign bit for group 7 of the 2-group unit
    with pytest.raises(ShapeError, match="past K"):
        formats.unpack("tl2", bad, 64, K, m_block=64, sign_unit=8)
    with pytest.raises(ShapeError, match="sign_unit must be 0 or 8"):
        formats.pack("tl2", w, m_block=1, sign_unit=8)
    with pytest.raises(TernkitError, match="sign_unit is a tl2 layout parameter"):
        formats.pack("i2", w, sign_unit=8)


@given(st.integers(1, 140), st.integers(1, 100), st.integers(0, 2**31))
@settings(max_examples=25, deadline=None, derandomize=True)
def test_tl2_sign_unit_round_trip_and_size(M, K, seed):
    w = np.random.default_rng(seed).integers(-1, 2, (M, K)).astype(np.int8)
    data = formats.pack("tl2", w, m_block=64, sign_unit=8)
    assert data.size == formats.get_format("tl2").nbytes(M, K, m_block=64, sign_unit=8)
    assert np.array_equal(formats.unpack("tl2", data, M, K, m_block=64, sign_unit=8), w)


def test_tl2_sign_unit_is_at_most_167_bits_a_weight_on_2b4t_shapes():
    tl2 = formats.get_format("tl2")
    for M, K in ((2560, 2560), (6912, 2560), (2560, 6912)):
        assert tl2.nbytes(M, K, m_block=64, sign_unit=8) * 8 / (M * K) <= 1.67


def test_tl2_indexes_the_14_non_negative_first_triples():
    triples = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)], dtype=np.int8)
    data = formats.pack("tl2", triples.reshape(1, -1))
    idx = np.stack([data[:14] & 15, data[:14] >> 4], axis=1).reshape(-1)[:27]
    signs = np.unpackbits(data[14:], bitorder="little")[:27]
    for t, i, s in zip(triples, idx, signs):
        first = next((int(v) for v in t if v), 0)
        assert s == (first < 0)
        canon = -t if s else t
        assert 0 <= i <= 13 and (first == 0) == (i == 0)
        assert int(9 * canon[0] + 3 * canon[1] + canon[2]) == i
    assert len(set(zip(idx.tolist(), signs.tolist()))) == 27


@pytest.mark.parametrize("name", formats.FORMATS)
def test_pack_rejects_bad_weights(name):
    scale = 1.0 if name in formats.GGML_FORMATS else None
    with pytest.raises(ShapeError, match="int8"):
        formats.pack(name, np.zeros((2, 256), np.float32), scale)
    with pytest.raises(ShapeError, match="not ternary"):
        formats.pack(name, np.full((2, 256), 2, np.int8), scale)
    with pytest.raises(ShapeError, match="2-D"):
        formats.pack(name, np.zeros(256, np.int8), scale)


@pytest.mark.parametrize("name", formats.FORMATS)
def test_unpack_rejects_bad_data(name):
    n = formats.pack(name, np.zeros((2, 256), np.int8), 1.0 if name in formats.GGML_FORMATS else None).size
    with pytest.raises(ShapeError, match=f"has {n - 1} bytes but a 2x256 matrix needs {n}"):
        formats.unpack(name, np.zeros(n - 1, np.uint8), 2, 256)
    with pytest.raises(ShapeError, match="uint8"):
        formats.unpack(name, np.zeros(n, np.int8), 2, 256)
    with pytest.raises(ShapeError, match="positive ints"):
        formats.unpack(name, np.zeros(n, np.uint8), 0, 256)


@pytest.mark.parametrize("name, data, shape, what", [
    ("i2", [0xFF], (1, 4), "code 3"), ("tl1", [0xFF], (1, 4), "above 8"), ("tl2", [0xFF, 0], (1, 6), "above 13"),
    ("tq2_0", [0xFF] * 64 + [0, 0], (1, 256), "code"),
    ("b3", [20] + [0] * 31, (1, 160), "not ceil"),    # 20 = ceil(v * 256 / 243) for no v
])
def test_unpack_rejects_codes_no_weight_packs_to(name, data, shape, what):
    with pytest.raises(ShapeError, match=what):
        formats.unpack(name, np.array(data, np.uint8), *shape)


def test_get_format_names():
    assert formats.get_format("TQ1_0") is formats.get_format("tq1_0")
    with pytest.raises(TernkitError, match="unknown weight format 'q4_0'"):
        formats.get_format("q4_0")


def test_b3_documented_layout_and_every_byte_value():
    """Byte i of a 160-weight block holds weights 32j + i as ceil(v * 256 / 243); all 243 trit patterns
    decode back, and so do the C kernels' multiply-by-3 and top-bit steps (checked here in numpy)."""
    w = np.zeros((1, 160), np.int8)
    w[0, [0, 32, 64, 96, 128]] = [1, -1, 0, 1, -1]           # byte 0: trits 2, 0, 1, 2, 0
    v = 81 * 2 + 27 * 0 + 9 * 1 + 3 * 2 + 0
    packed = formats.pack("b3", w)
    assert packed.size == 32 and packed[0] == -(-v * 256 // 243) and (packed[1:] == -(-121 * 256 // 243)).all()
    v = np.arange(243)
    trits = np.stack([v // 3 ** (4 - j) % 3 for j in range(5)], axis=1)            # [v, j]
    w = (trits.T.reshape(5, 243) - 1).astype(np.int8)                               # 243 columns of 5
    wfull = np.zeros((243, 160), np.int8)
    wfull[:, [0, 32, 64, 96, 128]] = w.T
    q = formats.pack("b3", wfull).reshape(243, 32)[:, 0].astype(np.int32)
    assert np.array_equal(formats.unpack("b3", formats.pack("b3", wfull), 243, 160), wfull)
    for j in range(5):                                     # the AVX2/AVX-512 decode, byte arithmetic
        m = q * 3 ** j % 256
        m = np.maximum(m - 1, 0) if j < 3 else m           # saturating -1 (not needed for j = 3, 4)
        top = (m + ((m + 1) >> 1) + 1) >> 1                # avg(m, avg(m, 0))
        assert np.array_equal(top >> 6, trits[:, j]) and top.max() < 192
