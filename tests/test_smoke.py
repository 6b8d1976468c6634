import numpy as np

from ternkit.cli import main
from ternkit.graph import load_model
from ternkit.reference import KVCache, forward


def test_cli_models_lists_builtins(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "bitnet-b1.58-2b4t" in out


def test_cli_unknown_model_is_one_clear_line(capsys):
    assert main(["run", "no-such-model"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[ternkit run]")]
    assert len(err) == 1 and "unknown built-in model 'no-such-model'" in err[0]


def test_kv_cache_decoding_matches_full_forward():
    model = load_model("tiny")
    tokens = np.arange(17) * 7 % 256
    full = forward(model, tokens)
    cache = KVCache()
    parts = [forward(model, tokens[:9], cache=cache)] + [forward(model, tokens[i:i + 1], cache=cache) for i in range(9, 17)]
    np.testing.assert_allclose(np.concatenate(parts), full, atol=1e-5)


def test_2b4t_shapes():
    model = load_model("bitnet-b1.58-2b4t")
    assert model.params is None
    q = model.attrs("layers.0.attn.q_proj")
    k = model.attrs("layers.0.attn.k_proj")
    down = model.attrs("layers.29.ffn.down_proj")
    assert (q["out_features"], q["in_features"]) == (2560, 2560)
    assert (k["out_features"], k["in_features"]) == (640, 2560)
    assert (down["out_features"], down["in_features"]) == (2560, 6912)
