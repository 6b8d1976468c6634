"""Training loop: exact resume, config validation, schedules, AdamW, data split, CLI."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ternkit.cli import main
from ternkit.errors import ConfigError
from ternkit.graph.checkpoint import read_checkpoint
from ternkit.train.config import config_from_mapping
from ternkit.train.data import load_corpus, stdlib_files
from ternkit.train.loop import train
from ternkit.train.optim import AdamW, clip_by_global_norm
from ternkit.train.schedule import Schedule

TINY_MODEL = {"name": "micro", "vocab_size": 256, "hidden": 16, "layers": 1, "max_seq": 32,
              "defaults": {"attention": {"heads": 2, "kv_heads": 1}, "ffn": {"hidden": 24}}}


def tiny_cfg(tmp, precision="ternary", steps=6, **over):
    d = {"model": TINY_MODEL, "precision": precision, "seed": 3, "data": {"max_bytes": 200_000},
         "train": {"steps": steps, "batch": 2, "seq_len": 16},
         "schedule": {"kind": "two_stage", "warmup": 2},
         "eval": {"interval": 2, "windows": 4}, "checkpoint": {"dir": str(tmp), "interval": 2}}
    d.update(over)
    return config_from_mapping(d)


QUIET = dict(progress=False, log=lambda *_: None)


@pytest.mark.parametrize("precision", ["ternary", "fp32"])
def test_resume_gives_identical_result(tmp_path, precision):
    full = train(tiny_cfg(tmp_path / "a", precision), **QUIET)
    part = train(tiny_cfg(tmp_path / "b", precision), stop_after=3, **QUIET)
    assert part.step == 3 and not (tmp_path / "b" / "final.safetensors").exists()
    resumed = train(tiny_cfg(tmp_path / "b", precision), resume=True, **QUIET)
    assert resumed.step == 6
    assert resumed.history == full.history  # every train loss, lr and val loss, bit for bit
    assert resumed.val_loss == full.val_loss
    for k in full.params:
        np.testing.assert_array_equal(resumed.params[k], full.params[k])
    assert full.history[-1]["train_loss"] < full.history[0]["train_loss"] + 1.0


def test_training_reduces_loss(tmp_path):
    res = train(tiny_cfg(tmp_path, steps=30, optimizer={"lr": 0.01}, eval={"interval": 30, "windows": 4}), **QUIET)
    assert res.val_loss < math.log(256) - 0.5  # well below the uniform byte distribution


def test_resume_without_checkpoint_or_with_other_model_fails(tmp_path):
    with pytest.raises(Exception, match="nothing to resume"):
        train(tiny_cfg(tmp_path), resume=True, **QUIET)
    train(tiny_cfg(tmp_path), stop_after=2, **QUIET)
    with pytest.raises(Exception, match="different model or precision"):
        train(tiny_cfg(tmp_path, precision="binary"), resume=True, **QUIET)


def test_distillation_runs_and_can_init_from_teacher(tmp_path):
    teacher = train(tiny_cfg(tmp_path / "t", "fp32", steps=2), **QUIET)
    cfg = tiny_cfg(tmp_path / "s", steps=1, distill={"teacher": str(teacher.checkpoint), "init_from_teacher": True,
                                                     "temperature": 2.0})
    assert cfg.distill.init_from_teacher
    student = train(cfg, **QUIET)
    assert np.isfinite(student.val_loss)
    # after one small step the student's latent weights are still next to the teacher's
    w = "layers.0.ffn.up_proj.weight"
    assert np.abs(student.params[w] - teacher.params[w]).max() < 0.05


@pytest.mark.parametrize("spec,message", [
    ({"precision": "int3"}, "precision: must be one of ternary, binary, fp32"),
    ({"train": {"batch": 0}}, "train.batch: must be a positive int"),
    ({"train": {"steps": 5, "tokens": 9}}, "train: give either steps or tokens"),
    ({"train": {"seq_len": 4096}}, "train.seq_len: must be <= the model's max_seq"),
    ({"optimizer": {"lr": -1}}, "optimizer.lr: must be a number > 0"),
    ({"optimizer": {"betas": [0.9]}}, "optimizer.betas: must be two numbers"),
    ({"schedule": {"kind": "linear"}}, "schedule.kind: must be one of cosine, constant, two_stage"),
    ({"schedule": {"warmpu": 3}}, "schedule.warmpu: unknown field"),
    ({"model": "no-such-model"}, "model: unknown built-in model"),
    ({"model": {"name": "x", "vocab_size": 256, "hidden": 0, "layers": 1}}, "model: model: invalid model spec"),
    ({"distill": {"temperature": 2}}, "distill.teacher: must be the path"),
])
def test_config_errors_name_the_field(spec, message):
    with pytest.raises(ConfigError, match="invalid training config") as exc:
        config_from_mapping(spec, "cfg.yaml")
    assert message in str(exc.value)


def test_tokens_budget_sets_steps():
    cfg = config_from_mapping({"train": {"tokens": 10_000, "batch": 4, "seq_len": 32}})
    assert cfg.steps == math.ceil(10_000 / 128)


def test_config_round_trips_through_meta(tmp_path):
    cfg = tiny_cfg(tmp_path)
    assert config_from_mapping(cfg.to_dict()) == cfg


@settings(max_examples=30, deadline=None)
@given(total=st.integers(10, 500), warmup=st.integers(0, 9), kind=st.sampled_from(["cosine", "constant", "two_stage"]))
def test_schedules(total, warmup, kind):
    s = Schedule(kind=kind, lr=1.0, warmup=warmup, min_lr_ratio=0.1, weight_decay=0.1)
    lrs = [s.lr_at(i, total) for i in range(total)]
    assert all(0 < v <= 1.0 + 1e-12 for v in lrs)
    if warmup:
        assert lrs[0] == pytest.approx(1 / warmup) and lrs[warmup - 1] == pytest.approx(1.0)
    if kind == "cosine":
        assert all(a >= b - 1e-12 for a, b in zip(lrs[warmup:], lrs[warmup + 1:]))
        assert warmup >= total - 1 or lrs[-1] == pytest.approx(0.1)  # the last update runs at the floor
    if kind == "two_stage":
        boundary = max(warmup, round(total * 0.5))
        if warmup < boundary < total:
            assert lrs[boundary] < lrs[boundary - 1]  # the cooldown drop
            assert s.weight_decay_at(boundary, total) == 0 and s.weight_decay_at(total - 1, total) == 0
            assert s.weight_decay_at(0, total) == pytest.approx(0.1)


def test_adamw_decay_only_on_matrices_and_clipping():
    params = {"embed.weight": np.ones((3, 2), np.float32), "layers.0.attn_norm.weight": np.ones(2, np.float32),
              "layers.0.attn.q_proj.weight": np.ones((2, 2), np.float32)}
    zero = {k: np.zeros_like(v) for k, v in params.items()}
    AdamW().step(params, zero, lr=0.1, weight_decay=0.5)
    assert np.all(params["embed.weight"] == 1) and np.all(params["layers.0.attn_norm.weight"] == 1)
    np.testing.assert_allclose(params["layers.0.attn.q_proj.weight"], 0.95)
    grads = {"a": np.full(4, 3.0), "b": np.full(9, 4.0 / 3)}  # norm sqrt(36 + 16) = sqrt(52)
    assert clip_by_global_norm(grads, 1.0) == pytest.approx(math.sqrt(52))
    assert clip_by_global_norm(grads, None) == pytest.approx(1.0)


def test_adamw_first_step_is_lr_sized():
    p = {"w": np.array([[1.0, -2.0]])}
    AdamW().step(p, {"w": np.array([[0.3, -7.0]])}, lr=0.01, weight_decay=0.0)
    np.testing.assert_allclose(p["w"], [[0.99, -1.99]], rtol=1e-6)


def test_corpus_split_is_deterministic_and_disjoint():
    files = stdlib_files()
    assert files == sorted(files, key=lambda p: p.as_posix()) and len(files) > 20
    a = load_corpus(300_000, 10)
    x1, y1 = a.batch(7, 2, 16, seed=1)
    x2, _ = a.batch(7, 2, 16, seed=1)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(x1[:, 1:], y1[:, :-1])
    assert a.val.size > 1000 and a.train.size > 5 * a.val.size


def test_cli_train_and_errors(tmp_path, capsys):
    import yaml

    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump({"model": TINY_MODEL, "data": {"max_bytes": 200_000},
                                   "train": {"steps": 2, "batch": 2, "seq_len": 8},
                                   "eval": {"windows": 2}, "checkpoint": {"dir": str(tmp_path / "ck")}}))
    assert main(["train", str(cfg), "--no-progress"]) == 0
    assert "step 2/2: validation loss" in capsys.readouterr().out
    _, meta, _ = read_checkpoint(tmp_path / "ck" / "final.safetensors")
    assert meta["train"]["precision"] == "ternary"
    bad = tmp_path / "bad.yaml"
    bad.write_text("precision: fp16\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "precision: must be one of" in err and err.startswith("ternkit: error:")
    assert main(["train"]) == 2


def test_distillation_with_attention_relations_lowers_relation_gap(tmp_path):
    """The relation term's gradient is wired into the backward: one step lowers the relation KL."""
    from ternkit.train.loop import _step_grads, load_trained
    from ternkit.train.network import TrainModel
    from ternkit.graph import build_graph, init_params
    from ternkit.train.relation import relation_kl, relation_nodes

    teacher = train(tiny_cfg(tmp_path / "t", "fp32", steps=2), **QUIET)
    cfg = tiny_cfg(tmp_path / "s", steps=1, distill={"teacher": str(teacher.checkpoint), "attention_weight": 1.0,
                                                     "kl_weight": 0.0, "ce_weight": 0.0})
    t_model, t_params = load_trained(teacher.checkpoint)
    tm = TrainModel(build_graph(cfg.model), "fp32")
    params = init_params(cfg.model, seed=5)
    x = np.random.default_rng(0).integers(0, 256, (2, 16))

    def gap(p):
        _, s_tape = tm.forward(p, x, keep_outputs=True)
        _, t_tape = t_model.forward(t_params, x, keep_outputs=True)
        return sum(relation_kl(s_tape.outputs[n], t_tape.outputs[n], 1)[0] for n in relation_nodes(0))

    before = gap(params)
    loss, grads = _step_grads(tm, params, x, x, cfg, (t_model, t_params))
    assert loss == pytest.approx(before, rel=1e-5)
    stepped = {k: v - 1e-2 * grads[k] for k, v in params.items()}
    assert gap(stepped) < before


def test_experiments_tables_and_reuse(tmp_path):
    from ternkit.train import experiments

    base = tiny_cfg(tmp_path, steps=2, eval={"interval": 2, "windows": 2})
    out = experiments.parity(base, tmp_path / "p", progress=False, log=lambda *_: None)
    for name in ("FP32", "b1.58 ternary", "v1 binary"):
        assert f"| {name} |" in out
    text = experiments.distill(base, tmp_path / "p", progress=False, log=lambda *_: None)
    # teacher and scratch student come from the parity runs, the three distilled students are new
    assert text.count("| reused |") == 2 and "distillation gain" in text
    assert len([line for line in text.splitlines() if line.startswith("| ")]) == 6


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="training diverged at step"):
        train(tiny_cfg(tmp_path, "fp32", steps=40, optimizer={"lr": 1e6, "grad_clip": 0.0, "weight_decay": 0.0},
                       schedule={"kind": "constant"}), **QUIET)


def test_killed_run_resumes_to_the_same_result(tmp_path):
    """`ternkit train CONFIG` killed with SIGKILL mid-run, then `--resume`: the same final loss and
    weights as an uninterrupted run (checkpoints are written atomically, so a kill never leaves a torn one)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    def config(folder):
        d = {"model": TINY_MODEL, "precision": "ternary", "seed": 3, "data": {"max_bytes": 200_000},
             "train": {"steps": 60, "batch": 2, "seq_len": 16}, "eval": {"interval": 20, "windows": 4},
             "checkpoint": {"dir": str(folder), "interval": 1}}
        path = tmp_path / f"{folder.name}.yaml"
        path.write_text(yaml.safe_dump(d))
        return path

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "ternkit", "train"]
    ref_cfg, run_cfg = config(tmp_path / "ref"), config(tmp_path / "run")
    subprocess.run([*cmd, str(ref_cfg), "--no-progress"], check=True, env=env, capture_output=True)
    proc = subprocess.Popen([*cmd, str(run_cfg), "--no-progress"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    last = tmp_path / "run" / "last.safetensors"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if last.exists() and read_checkpoint(last)[1]["train"]["step"] >= 5:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = read_checkpoint(last)[1]["train"]["step"]
    assert 5 <= killed_at < 60 and not (tmp_path / "run" / "final.safetensors").exists()
    subprocess.run([*cmd, str(run_cfg), "--resume", "--no-progress"], check=True, env=env, capture_output=True)
    ref, ref_meta, _ = read_checkpoint(tmp_path / "ref" / "final.safetensors")
    got, got_meta, _ = read_checkpoint(tmp_path / "run" / "final.safetensors")
    assert got_meta["train"]["val_loss"] == ref_meta["train"]["val_loss"]
    for k in ref.params:
        np.testing.assert_array_equal(got.params[k], ref.params[k])
