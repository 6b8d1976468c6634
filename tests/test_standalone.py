"""`ternkit generate --with-runtime`: the emitted C program runs the whole model without Python and
matches the numpy reference (natively, and for neon cross-built and run under qemu-aarch64)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from ternkit.cli import main
from ternkit.codegen.targets import best_native_target, get_target, target_names
from ternkit.graph import load_model
from ternkit.reference import forward

TRAINED = Path(__file__).parent.parent / "examples" / "tiny-trained.safetensors"
PROMPT = list(b"def main(")


def build_and_run(tmp_path: Path, target: str, make_args: list[str], runner: list[str],
                  threads: tuple[int, ...] = (1,), model: Path = TRAINED) -> np.ndarray:
    """The last prompt token's logits, the same (bit for bit) with each thread count in `threads`."""
    out = tmp_path / target
    assert main(["generate", str(model), "--target", target, "--with-runtime", "-o", str(out)]) == 0
    done = subprocess.run(["make", *make_args], cwd=out, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    texts = []
    for n in threads:
        run = subprocess.run([*runner, str(out / "model_runtime"), str(out / "weights.bin"), "--threads", str(n),
                              *map(str, PROMPT)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        texts.append(run.stdout)
    # every split is of independent rows or heads (kernels, attention heads, LM head rows): same floats
    assert all(t == texts[0] for t in texts), f"logits differ between {threads} threads"
    return np.array(texts[0].split(), dtype=np.float32)


def expected(model: Path = TRAINED) -> np.ndarray:
    return forward(load_model(str(model)), np.array(PROMPT))[-1]


NATIVE = [t for t in target_names() if t != "neon"
          and get_target(t).unavailable_reason() is None and get_target(t).runs_natively()]


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("cc") is None, reason="make / cc not installed")
@pytest.mark.parametrize("target", NATIVE)
def test_standalone_runtime_native(tmp_path, target):
    logits = build_and_run(tmp_path, target, [], [], threads=(1, 2, 3))
    ref = expected()
    np.testing.assert_allclose(logits, ref, rtol=1e-3, atol=1e-3)
    assert int(np.argmax(logits)) == int(np.argmax(ref))


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("cc") is None, reason="make / cc not installed")
@pytest.mark.parametrize("hidden, heads, kv_heads", [(128, 8, 2), (96, 6, 1)])
def test_standalone_runtime_grouped_query_heads(tmp_path, hidden, heads, kv_heads):
    """4 and 6 query heads a key/value head (2B4T has 4; tiny 2): the runtime's attention reads each cached
    key/value row once for all of a group's query heads."""
    config = yaml.safe_load((Path(__file__).parent.parent / "ternkit/graph/models/tiny.yaml").read_text())
    config.update(name=f"tiny-{heads}-{kv_heads}", hidden=hidden)
    config["defaults"]["attention"] = {"heads": heads, "kv_heads": kv_heads}
    model = tmp_path / "model.yaml"
    model.write_text(yaml.safe_dump(config))
    target = best_native_target().name
    logits = build_and_run(tmp_path, target, [], [], threads=(1, 2), model=model)
    ref = expected(model)
    np.testing.assert_allclose(logits, ref, rtol=1e-3, atol=1e-3)
    assert int(np.argmax(logits)) == int(np.argmax(ref))


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None or shutil.which("qemu-aarch64") is None,
                    reason="aarch64-linux-gnu-gcc / qemu-aarch64 not installed (apt-get install gcc-aarch64-linux-gnu qemu-user)")
def test_standalone_runtime_neon_under_qemu(tmp_path):
    logits = build_and_run(tmp_path, "neon", ["CC=aarch64-linux-gnu-gcc"],
                           ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"])
    ref = expected()
    np.testing.assert_allclose(logits, ref, rtol=1e-3, atol=1e-3)
    assert int(np.argmax(logits)) == int(np.argmax(ref))


def test_with_runtime_refuses_a48_and_shape_only_models(tmp_path, capsys):
    assert main(["generate", "tiny-a4.8", "--with-runtime", "-o", str(tmp_path / "a")]) == 2
    assert "int8 activations only" in capsys.readouterr().err
    assert main(["generate", "bitnet-b1.58-2b4t", "--with-runtime", "-o", str(tmp_path / "b")]) == 2
    assert "no weights" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
