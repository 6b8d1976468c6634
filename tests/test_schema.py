"""The pydantic config schemas: every default declared once (on the schema, none on the flat runtime
classes), and bad values refused with one line naming their YAML path."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from ternkit import schema
from ternkit.cli import main
from ternkit.codegen import tuning
from ternkit.errors import ConfigError
from ternkit.graph import config as graph
from ternkit.sim import config as npu
from ternkit.sim import sweep
from ternkit.sim.tech import Tech
from ternkit.train import config as train
from ternkit.train.schedule import ScheduleSpec

MODEL = {"name": "m", "vocab_size": 64, "hidden": 32, "layers": 1,
         "defaults": {"attention": {"heads": 4}, "ffn": {"hidden": 48}}}


def test_flat_runtime_configs_declare_no_defaults_of_their_own():
    """NpuConfig and TrainConfig are built from their schemas only: a default here would be a second one."""
    for cls in (npu.NpuConfig, train.TrainConfig):
        given = [f.name for f in dataclasses.fields(cls)
                 if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
        assert given == [], cls


def test_an_empty_npu_config_is_the_schema_defaults():
    cfg = npu.config_from_dict({}, "empty.yaml")
    array = schema.defaults(npu.Array)
    assert {k: getattr(cfg, k) for k in array} == array
    spec = schema.defaults(npu.NpuSpec)
    assert (cfg.clock_ghz, cfg.dataflow, cfg.double_buffering, cfg.weight_bits, cfg.stream_decode_weights) == (
        spec["clock_ghz"], spec["dataflow"], spec["double_buffering"], spec["weight_bits"], spec["stream_decode_weights"])
    assert cfg.dram_gb_per_s == spec["dram"]["gb_per_s"] and cfg.vector_lanes == spec["vector"]["lanes"]
    assert [dataclasses.asdict(b) for b in (cfg.weight_buf, cfg.act_buf, cfg.out_buf)] == list(spec["buffers"].values())
    assert cfg.tech.name == spec["tech"]["table"] and cfg.name == "empty"


def test_the_shipped_default_npu_file_agrees_with_the_schema():
    """default.yaml spells every field out for readers; it must say what the schema says."""
    assert npu.load_npu_config() == npu.config_from_dict({}, "default.yaml")


def test_a_partial_section_keeps_the_other_defaults():
    cfg = npu.config_from_dict({"buffers": {"weight": {"kib": 512}}, "array": {"columns": 8}})
    assert (cfg.weight_buf.kib, cfg.weight_buf.width_bits, cfg.weight_buf.banks) == (512, 256, 4)
    assert cfg.act_buf == npu.Buffers().activation and (cfg.columns, cfg.inputs) == (8, 64)


def test_an_empty_training_config_is_the_schema_defaults():
    cfg = train.config_from_mapping({})
    run, data, ev, ck = (schema.defaults(c) for c in (train.StepsSpec, train.DataSpec, train.EvalSpec,
                                                        train.CheckpointSpec))
    assert (cfg.steps, cfg.batch, cfg.seq_len) == (run["steps"], run["batch"], run["seq_len"])
    assert (cfg.max_bytes, cfg.val_every) == (data["max_bytes"], data["val_every"])
    assert (cfg.eval_interval, cfg.eval_windows) == (ev["interval"], ev["windows"])
    assert (str(cfg.checkpoint_dir), cfg.checkpoint_interval) == (ck["dir"], ck["interval"])
    assert dataclasses.asdict(cfg.optimizer) == schema.defaults(train.OptimConfig)
    sched = dataclasses.asdict(cfg.schedule)
    assert (sched.pop("lr"), sched.pop("weight_decay")) == (cfg.optimizer.lr, cfg.optimizer.weight_decay)
    assert sched == schema.defaults(ScheduleSpec)
    top = schema.defaults(train.TrainSpec)
    assert (cfg.model.name, cfg.precision, cfg.seed, cfg.distill) == (top["model"], top["precision"],
                                                                       top["seed"], None)


def test_a_minimal_model_spec_gets_the_schema_defaults():
    cfg = graph.config_from_dict(MODEL, "m.yaml")
    for name, default in schema.defaults(graph.ModelConfig).items():
        assert getattr(cfg, name) == default, name
    assert cfg.layers[0].ffn.activation == schema.defaults(graph.FFNConfig)["activation"]
    att = cfg.layers[0].attention
    assert (att.kv_heads, att.head_dim) == (4, 8)      # derived: kv_heads = heads, head_dim = hidden // heads


def test_code_built_configs_get_the_same_defaults():
    """The importers and experiments build configs in code: the defaults there are the schema's."""
    layer = graph.LayerConfig(graph.AttentionConfig(4, 4, 8), graph.FFNConfig(48))
    assert graph.ModelConfig(name="m", vocab_size=64, hidden=32, layers=(layer,)) == graph.config_from_dict(MODEL)
    assert train.DistillConfig(teacher="t") == train.DistillConfig(**{"teacher": "t"})
    with pytest.raises(ConfigError, match=r"^AttentionConfig: kv_heads: must divide heads \(4\), got 3$"):
        graph.AttentionConfig(4, 3, 8)
    with pytest.raises(ConfigError, match=r"^ModelConfig: norm_eps: must be a finite positive number, got nan$"):
        dataclasses.replace(graph.config_from_dict(MODEL), norm_eps=float("nan"))


@pytest.mark.parametrize("load, data, message", [
    (npu.config_from_dict, {"array": {"inputs": 1}, "clock": 2, "vector": {"lanes": 0}},
     "npu.yaml: invalid NPU config: clock: unknown field (expected one of: array, buffers, clock_ghz, "),
    (npu.config_from_dict, {"array": {"columns": 0}, "vector": {"lanes": 0}},
     "npu.yaml: invalid NPU config: array.columns: must be a positive int, got 0; vector.lanes: must be a positive int"),
    (npu.config_from_dict, {"buffers": {"output": {"banks": 1.5}}}, "buffers.output.banks: must be a positive int, got 1.5"),
    (npu.config_from_dict, {"array": [64]}, "array: must be a mapping"),
    (npu.config_from_dict, {"tech": {"overrides": [1]}}, "tech.overrides: must be a mapping"),
    (train.config_from_mapping, {"optimizer": {"lr": float("nan")}}, "optimizer.lr: must be a number > 0.0, got nan"),
    (train.config_from_mapping, {"schedule": {"lr": 1}}, "schedule.lr: unknown field (expected one of: kind, "),
    (train.config_from_mapping, {"data": {"val_every": 1}}, "data.val_every: must be at least 2"),
    (train.config_from_mapping, {"distill": {"teacher": "t", "relation_heads": 0}},
     "distill.relation_heads: must be a positive int, got 0"),
    (graph.config_from_dict, {**MODEL, "norm_eps": float("inf")}, "norm_eps: must be a finite positive number, got inf"),
    (graph.config_from_dict, {**MODEL, "defaults": {"attention": {"heads": 4, "head_dim": 3}, "ffn": {"hidden": 4}}},
     "defaults.attention.head_dim: must be even for RoPE, got 3"),
    (graph.config_from_dict, {**MODEL, "hidden": 30}, "defaults.attention.heads: must divide hidden (30) or set head_dim"),
    (graph.config_from_dict, {**MODEL, "layers": [{"attention": {"heads": 4}, "ffn": {"hidden": 8, "act": "relu2"}}]},
     "layers[0].ffn.act: unknown field (expected one of: activation, hidden)"),
])
def test_bad_values_give_one_line_naming_the_path(load, data, message):
    with pytest.raises(ConfigError) as e:
        load(data, "npu.yaml")
    text = str(e.value)
    assert message in text and (load is train.config_from_mapping or "\n" not in text)


def test_every_problem_of_a_training_config_is_listed_at_once():
    with pytest.raises(ConfigError) as e:
        train.config_from_mapping({"bogus": 1, "eval": {"windows": 0}, "seed": -1}, "t.yaml")
    assert str(e.value).splitlines()[1:] == [
        "  bogus: unknown field (expected one of: checkpoint, data, distill, eval, model, optimizer, precision, "
        "schedule, seed, train)",
        "  seed: must be a non-negative int, got -1", "  eval.windows: must be a positive int, got 0"]


def test_tech_table_problems_name_the_file_or_the_override(tmp_path):
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump({"name": "t", "source": "s", "int_add_pj": {8: 1}, "fp16_add_pj": -1}))
    with pytest.raises(ConfigError) as e:
        npu.config_from_dict({"tech": {"table": str(table), "overrides": {"int_mult_pj": {8: -1}}}}, "n.yaml")
    text = str(e.value)
    assert text.startswith("n.yaml: invalid NPU config: ") and "\n" not in text
    assert f"{table}: missing assumptions" in text and f"{table}: fp16_add_pj: energies must be finite" in text
    assert "tech.overrides.int_mult_pj: energies must be finite non-negative numbers" in text
    assert {f.name for f in dataclasses.fields(Tech) if f.default is dataclasses.MISSING} >= {"name", "dram_pj_per_bit"}


@pytest.mark.parametrize("text, message", [
    ("grid: {array.columns: 32}\n", "grid.array.columns: must be a non-empty list of values"),
    ("grid: {}\n", "grid: a sweep grid needs `grid:`"),
    ("base: 3\ngrid: {array.columns: [32]}\n", "base: must be the path of an NPU config, got 3"),
    ("grid: {array.columns: [32]}\nbse: x.yaml\n", "bse: unknown field (expected one of: base, grid)"),
])
def test_bad_sweep_grids_name_the_field(tmp_path, text, message):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        sweep.load_grid(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)


def test_tuning_files_keep_notes_and_refuse_a_bad_shape(tmp_path):
    path = tmp_path / "tuning.yaml"
    path.write_text("machine: x\nnote: hand-edited\ntargets: {avx2: {k: {rows: 2}}}\n")
    assert tuning.load(path) == {"avx2": {"k": {"rows": 2}}}
    path.write_text("targets: {avx2: [1]}\n")
    with pytest.raises(ConfigError, match=r"tuning.yaml: targets: expected a mapping 'targets: \{target:"):
        tuning.load(path)


def test_the_cli_prints_a_bad_npu_config_as_one_line(tmp_path, capsys):
    path = tmp_path / "npu.yaml"
    path.write_text("array: {fan_in: 3}\nclock_ghz: .inf\n")
    assert main(["simulate", "tiny", "--npu", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "array.fan_in: must be a power of two >= 2, got 3" in err[0]
    assert "clock_ghz: must be a finite positive number, got inf" in err[0] and "Traceback" not in err[0]
