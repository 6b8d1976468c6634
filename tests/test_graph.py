"""Model graph: YAML validation messages with paths, save/load round trip, `ternkit info`."""

import numpy as np
import pytest
import yaml

from ternkit.cli import main
from ternkit.errors import ConfigError
from ternkit.graph import builtin_names, config_from_dict, load_config, load_model
from ternkit.reference import forward

GOOD = {"name": "m", "vocab_size": 64, "hidden": 32, "layers": 2,
        "defaults": {"attention": {"heads": 4, "kv_heads": 2}, "ffn": {"hidden": 48}}}


@pytest.mark.parametrize("patch, message", [
    ({"vocab_size": 0}, "vocab_size: must be a positive int, got 0"),
    ({"hidden": "wide"}, "hidden: must be a positive int"),
    ({"weights": "quaternary"}, "weights: must be one of ternary, binary, got 'quaternary'"),
    ({"activation_bits": 6}, "activation_bits: must be one of 8, 4, got 6"),
    ({"bogus": 1}, "bogus: unknown field"),
    ({"layers": [{"attention": {"heads": 4, "kv_heads": 3}, "ffn": {"hidden": 48}}]},
     "layers[0].attention.kv_heads: must divide heads (4), got 3"),
    ({"layers": [{"attention": {"heads": 4, "kv_heads": 2}, "ffn": {"hidden": 48}}] * 3
     + [{"attention": {"heads": 4, "kv_heads": 2}, "ffn": {"hidden": -1}}]},
     "layers[3].ffn.hidden: must be a positive int, got -1"),
    ({"defaults": {"attention": {"heads": 4, "kv_heads": 2}, "ffn": {"hidden": 48, "activation": "gelu"}}},
     "ffn.activation: must be one of relu2, swiglu, got 'gelu'"),
])
def test_bad_fields_are_reported_with_their_path(patch, message):
    with pytest.raises(ConfigError) as e:
        config_from_dict({**GOOD, **patch}, "spec.yaml")
    assert message in str(e.value) and "\n" not in str(e.value) and str(e.value).startswith("spec.yaml: ")


def test_all_problems_are_listed_at_once():
    with pytest.raises(ConfigError) as e:
        config_from_dict({**GOOD, "vocab_size": 0, "weights": "x"}, "spec.yaml")
    assert "vocab_size:" in str(e.value) and "weights:" in str(e.value)


@pytest.mark.parametrize("text, message", [("name: [unclosed\n", "not valid YAML (line 2"),
                                           ("- a\n", "must be a YAML mapping")])
def test_unreadable_yaml_is_one_clear_line(tmp_path, capsys, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    assert main(["info", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_models_round_trip_through_yaml(tmp_path, name):
    model = load_model(name, with_params=False)
    model.save_yaml(tmp_path / "m.yaml")
    assert load_config(tmp_path / "m.yaml") == model.config
    assert yaml.safe_load((tmp_path / "m.yaml").read_text())["name"] == name


def test_yaml_model_runs_end_to_end(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    model = load_model(path)
    assert model.graph.number_of_nodes() > 0 and len(model.bitlinears()) == 2 * 7
    logits = forward(model, np.array([1, 2, 3]))
    assert logits.shape == (3, 64) and np.all(np.isfinite(logits))


def test_info_reports_parameters_and_format_sizes(capsys):
    assert main(["info", "bitnet-b1.58-2b4t"]) == 0
    out = capsys.readouterr().out
    assert "30 layers" in out and "2,412,820,480" in out
    assert "0-29    20     5" in out and "6912" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in
            ("i2", "tl1", "tl2", "tq1_0", "tq2_0")}
    assert set(rows) == {"i2", "tl1", "tl2", "tq1_0", "tq2_0"}
    assert "496.88 MiB" in rows["i2"] and "1.667" in rows["tl2"] and "414.45 MiB" in rows["tl2"]


def test_info_marks_formats_that_cannot_hold_the_shapes(capsys):
    assert main(["info", "tiny"]) == 0
    assert "n/a: K = 128 is not a multiple of 256" in capsys.readouterr().out
