"""No traceback anywhere a user can reach: every bad input is one line on stderr, a non-zero exit, and
nothing written."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from cli_helpers import one_line_error, run_cli, unwritable

from ternkit import __version__, cli
from ternkit.graph import load_model
from ternkit.graph.checkpoint import read_checkpoint, save_checkpoint
from ternkit.runtime.report import RunReport

BAD_ARGUMENTS = [   # (argv, words the one line must hold: the option to blame and the limit)
    (["bench", "tiny", "--threads", "0"], ["--threads", "positive"]),
    (["bench", "tiny", "--tokens", "1,x"], ["--tokens"]),
    (["bench", "tiny", "--repeat", "0"], ["--repeat"]),
    (["simulate", "tiny", "--prefill", "-5"], ["--prefill", ">= 0"]),
    (["simulate", "tiny", "--tokens", "-1"], ["--tokens"]),
    (["simulate", "tiny", "--density", "2"], ["--density", "[0, 1]"]),
    (["sweep", "tiny", "--prefill", "-5"], ["--prefill"]),
    (["sweep", "tiny", "-j", "0"], ["--jobs"]),
    (["validate", "tiny", "--threads", "0"], ["--threads", ">= 1"]),
    (["tune", "tiny", "--dram-mb", "-1"], ["--dram-mb"]),
    (["generate", "tiny", "--tokens", "0", "-o", "{tmp}/gen"], ["--tokens"]),
    (["generate", "tiny", "--target", "avx512", "--decode-format", "tl1", "-o", "{tmp}/gen"],
     ["--decode-format tl1", "'avx512' has no 'tl1' kernels", "auto, same, i2, tl2, b3"]),
    (["speed", "tiny", "--target", "scalar", "--decode-format", "fast"], ["--decode-format fast", "auto, same"]),
    (["run", "--prompt", "10000"], ["--prompt 10000", "256 tokens"]),
    (["run", "--prompt", "0"], ["--prompt"]),
    (["train", "--steps", "0"], ["--steps"]),
    (["run", "--npu", "missing.yaml"], ["missing.yaml: no such NPU config"]),
    (["bench", "tiny", "--tuning", "missing.yaml"], ["missing.yaml"]),
    (["nonsense"], ["invalid choice"]),
]


@pytest.mark.parametrize("argv,words", BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_bad_arguments_blame_the_right_option(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli([a.format(tmp=tmp_path) for a in argv]) == 2
    one_line_error(capsys, *words)
    assert list(tmp_path.iterdir()) == []


def test_version(capsys):
    assert run_cli(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ternkit {__version__}"


def test_garbage_and_misplaced_files(tmp_path, capsys):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(np.random.default_rng(0).bytes(1000))
    assert run_cli(["info", str(garbage)]) == 2
    one_line_error(capsys, "garbage.npz: not a readable .npz checkpoint")
    ckpt = tmp_path / "model.safetensors"
    save_checkpoint(load_model("tiny"), ckpt)
    assert run_cli(["train", str(ckpt)]) == 2                     # a checkpoint where a config belongs
    one_line_error(capsys, "model.safetensors: is a checkpoint; expected the training config")
    binary = tmp_path / "config.yaml"
    binary.write_bytes(b"\xff\xfe\x00binary")
    assert run_cli(["train", str(binary)]) == 2
    one_line_error(capsys, "config.yaml: a binary file; expected the training config")


def test_wrong_tensor_shape_names_the_tensor(tmp_path, capsys):
    model = load_model("tiny")
    params = dict(model.params)
    params["layers.1.ffn.up_proj.weight"] = params["layers.1.ffn.up_proj.weight"][:, :100]
    model.params = params
    path = tmp_path / "bad.safetensors"
    save_checkpoint(model, path)
    assert run_cli(["simulate", str(path)]) == 2
    one_line_error(capsys, "tensor layers.1.ffn.up_proj.weight has shape (352, 100)", "(352, 128)")


@pytest.mark.parametrize("argv", [
    ["simulate", "tiny", "--out", "{ro}/sim/out.json"],
    ["simulate", "tiny", "--plot", "{ro}/energy.png"],
    ["sweep", "tiny", "--out", "{ro}/points.csv"],
    ["bench", "tiny", "--plot", "{ro}/gemv.png"],
    ["tune", "tiny", "-o", "{ro}/tuned"],
    ["generate", "tiny", "-o", "{ro}/gen"],
    ["run", "--out", "{ro}/report"],
], ids=lambda a: " ".join(a[:3]))
def test_unwritable_outputs_fail_before_the_work(argv, tmp_path, capsys):
    ro = unwritable(tmp_path)
    before = sorted(os.listdir(ro))
    t0 = time.perf_counter()
    assert run_cli([a.format(ro=ro) for a in argv]) == 2
    one_line_error(capsys, "cannot write in")
    assert time.perf_counter() - t0 < 5          # refused up front, not after simulating/benchmarking
    assert sorted(os.listdir(ro)) == before


@pytest.mark.parametrize("argv", [["validate", "tiny", "--target", "scalar"], ["run"], ["bench", "tiny"],
                                  ["tune", "tiny", "-o", "{tmp}/t"]], ids=lambda a: a[0])
def test_unwritable_compiler_cache_is_one_line_up_front(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TERNKIT_CACHE_DIR", str(unwritable(tmp_path) / "cache"))
    assert run_cli([a.format(tmp=tmp_path) for a in argv]) == 2
    one_line_error(capsys, "compiler cache", "TERNKIT_CACHE_DIR")


def test_safety_net_for_interrupts_and_os_errors(capsys, monkeypatch):
    def interrupted():
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "build_parser", interrupted)   # Ctrl-C while the commands are being imported
    assert cli.main(["run"]) == 130
    assert capsys.readouterr().err == "ternkit: interrupted\n"

    def denied():
        raise PermissionError(13, "Permission denied", "/data/x.bin")
    monkeypatch.setattr(cli, "build_parser", denied)
    assert cli.main(["run"]) == 2
    one_line_error(capsys, "/data/x.bin: Permission denied")


ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def test_ctrl_c_while_starting_up_exits_130_with_one_line(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "ternkit", "run", "--out", str(tmp_path / "r")], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()          # the first step line: loading is done, lowering starts
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(60) == 130, first + rest
    assert "Traceback" not in rest and rest.endswith("ternkit: interrupted\n"), rest
    assert not (tmp_path / "r").exists()     # the report is written at the end or not at all


@pytest.mark.slow
def test_ctrl_c_during_training_saves_a_checkpoint_that_resumes_exactly(tmp_path):
    def config(folder):
        d = {"model": "tiny", "precision": "ternary", "seed": 3, "data": {"max_bytes": 200_000},
             "train": {"steps": 30, "batch": 2, "seq_len": 16}, "eval": {"interval": 10, "windows": 4},
             "checkpoint": {"dir": str(folder), "interval": 5}}
        path = tmp_path / f"{folder.name}.yaml"
        path.write_text(yaml.safe_dump(d))
        return path

    cmd = [sys.executable, "-m", "ternkit", "train", "--no-progress"]
    proc = subprocess.Popen([*cmd, str(config(tmp_path / "run"))], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    last = tmp_path / "run" / "last.safetensors"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)                      # training is under way once the step-5 checkpoint exists
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(60) == 130, err
    assert err.count("\n") == 1 and err.startswith("ternkit: interrupted: stopped after step"), err
    stopped = read_checkpoint(last)[1]["train"]["step"]
    assert f"step {stopped}/30" in err and 5 <= stopped < 30
    subprocess.run([*cmd, str(config(tmp_path / "run")), "--resume"], check=True, env=ENV, capture_output=True)
    subprocess.run([*cmd, str(config(tmp_path / "ref"))], check=True, env=ENV, capture_output=True)
    ref, ref_meta, _ = read_checkpoint(tmp_path / "ref" / "final.safetensors")
    got, got_meta, _ = read_checkpoint(tmp_path / "run" / "final.safetensors")
    assert got_meta["train"]["val_loss"] == ref_meta["train"]["val_loss"]
    for k in ref.params:
        np.testing.assert_array_equal(got.params[k], ref.params[k])


def test_report_markdown_escapes_pipes_and_json_keeps_numbers(tmp_path):
    r = RunReport(model="m", layers=1, hidden=8, parameters=100, bitlinears=7, weight_zeros=0.3, target="neon",
                  emulated=True, kernels=2, compile_seconds=0.5, exact=True, max_logit_diff=0.0,
                  prefill_tps={"kernels": 10.0, "reference": 5.0}, decode_tps={"kernels": 2.0},
                  npu={"config": "default", "cycles": 1234, "seconds": 1e-6, "energy_uj": 3.5, "savings_vs_int8": 3.2,
                       "savings_vs_fp16": 6.1, "arithmetic_savings_vs_fp16": 62.4})
    assert "EMULATED" in r.text()
    for line in r.markdown().splitlines()[2:]:   # every table row has exactly its two cells
        assert line.replace("\\|", "").count("|") == 3, line
    assert "max \\|logit diff\\|" in r.markdown()
    r.write(tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["npu"]["cycles"] == 1234 and data["npu"]["energy_uj"] == 3.5 and data["prefill_tps"]["kernels"] == 10.0


def test_shipped_sweep_grid_has_no_invalid_points():
    from ternkit.sim.config import config_from_dict
    from ternkit.sim.sweep import apply, load_grid, points

    base, grid = load_grid("examples/npu/sweep.yaml")
    for settings in points(grid):
        config_from_dict(apply(base, settings))       # raises ConfigError naming the field if invalid
    assert len(points(grid)) == 192


def test_run_on_an_emulated_target_says_so(capsys):
    """`run --target neon` on x86 runs NEON through SIMDe: the report must say its speed is not NEON's."""
    from ternkit.codegen.targets import get_target

    if get_target("neon").emulation() is None:
        pytest.skip("neon runs natively here or SIMDe is missing")
    assert cli.main(["run", "--target", "neon", "--prompt", "2", "--decode", "1"]) == 0
    captured = capsys.readouterr()
    assert "EMULATED on this machine with SIMDe" in captured.out
    assert "neon is emulated on this machine" in captured.err
