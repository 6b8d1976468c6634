"""Text in, text out: tokenizers (bytes, tokenizer.json, GGUF), sampling, `ternkit complete`, and
`ternkit eval` perplexity, all through the compiled kernels and equal to the numpy reference."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from ternkit.cli import main
from ternkit.errors import TernkitError
from ternkit.graph import config_from_dict, load_model
from ternkit.graph.checkpoint import save_checkpoint
from ternkit.graph.modelgraph import build_graph, init_params
from ternkit.reference.forward import forward, greedy_generate, reference_core
from ternkit.runtime import evaluate as ev
from ternkit.runtime.generation import Sampler, Sampling, generate
from ternkit.runtime.textmodel import open_text_model
from ternkit.runtime.tokenizer import ByteTokenizer, from_gguf, from_tokenizer_json, load_tokenizer

TRAINED = Path(__file__).parent.parent / "examples" / "tiny-trained.safetensors"
PROMPT = "import os\ndef main("
CORPUS = ["def main(argv):\n    return parse(argv) or 0\n", "import os, sys\nclass Reader:\n    pass\n",
          "for line in open(path):\n    print(line.strip())\n", "héllo wörld — ünïcode ✓\n"] * 20


@pytest.fixture(scope="module")
def trained():
    return open_text_model(TRAINED)


def test_complete_gives_the_reference_greedy_tokens_exactly(trained):
    ids = trained.tokenizer.encode(PROMPT)
    pieces: list[str] = []
    gen = trained.complete(PROMPT, 40, on_text=pieces.append)
    ref = greedy_generate(trained.model, ids, 40)
    assert gen.tokens == ref[:len(gen.tokens)] and len(gen.tokens) == 40 and gen.stopped == "length"
    assert "".join(pieces) == bytes(ref).decode("utf-8", errors="replace")
    assert gen.prefill_tokens_per_s > 0 and gen.decode_tokens_per_s > 0 and gen.decode_steps == 39


def test_complete_command_streams_text_to_stdout_and_speed_to_stderr(capsys):
    assert main(["complete", str(TRAINED), "--prompt", PROMPT, "-n", "24"]) == 0
    out, err = capsys.readouterr()
    ref = greedy_generate(load_model(TRAINED), list(PROMPT.encode()), 24)
    assert out == bytes(ref).decode("utf-8", errors="replace") + "\n"
    assert "kernels" in err and "prefill 19 tokens" in err and "decode 23 tokens" in err and "tok/s" in err


def test_sampling_with_a_seed_reproduces_and_differs_from_another_seed(trained):
    def sample(seed):
        return trained.complete(PROMPT, 48, sampling=Sampling(0.9, 0.95, seed)).tokens
    a, b, c = sample(3), sample(3), sample(4)
    assert a == b and a != c
    # the kernels and the numpy reference draw the same tokens from the same seed
    ref = generate(trained.model, trained.tokenizer.encode(PROMPT), 48, core=reference_core,
                   sampling=Sampling(0.9, 0.95, 3), stop=trained.tokenizer.eos).tokens
    assert ref == a


def test_sampler_top_p_keeps_only_the_nucleus():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    sampler = Sampler(Sampling(1.0, 0.8, 0))
    assert {sampler(logits) for _ in range(400)} == {0, 1}
    sampler = Sampler(Sampling(1.0, 1.0, 0))
    counts = np.bincount([sampler(logits) for _ in range(4000)], minlength=4) / 4000
    assert np.allclose(counts, [0.5, 0.3, 0.15, 0.05], atol=0.03)
    assert Sampler(Sampling(0.0))(logits) == 0


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_p=0), dict(top_p=1.5), dict(temperature=float("nan"))])
def test_bad_sampling_settings_are_refused(bad):
    with pytest.raises(TernkitError):
        Sampling(**bad)


def test_byte_stream_never_splits_a_utf8_character():
    tok = ByteTokenizer()
    stream = tok.stream()
    text = "ü✓ ok"
    assert "".join(stream(b) for b in tok.encode(text)) == text
    stream = tok.stream()
    assert stream(0xC3) == "" and stream(0xBC) == "ü"


def small_tokenizer(tmp_path: Path) -> Path:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    return path


def bpe_model(vocab: int):
    cfg = config_from_dict({"name": "bpe-small", "vocab_size": vocab, "hidden": 64, "layers": 1, "max_seq": 96,
                            "defaults": {"attention": {"heads": 2, "kv_heads": 1}, "ffn": {"hidden": 128}}})
    model = build_graph(cfg)
    model.set_params(init_params(cfg, 5, std=0.2))
    return model


def test_tokenizer_json_beside_a_checkpoint_is_used_and_round_trips(tmp_path, capsys):
    tok_path = small_tokenizer(tmp_path)
    tok = from_tokenizer_json(tok_path)
    text = "def main(argv):\n    héllo ✓"
    assert tok.decode(tok.encode(text)) == text and len(tok.encode(text)) < len(text.encode())
    assert tok.eos == {tok._tok.token_to_id("<|endoftext|>")}
    model = bpe_model(tok.vocab_size + 3)
    ckpt = tmp_path / "m.npz"
    save_checkpoint(model, ckpt)
    assert main(["complete", str(ckpt), "--prompt", "def main(", "-n", "12"]) == 0
    out, err = capsys.readouterr()
    ids = tok.encode("def main(")
    ref = greedy_generate(model, ids, 12)
    eos = next(iter(tok.eos))
    ref = ref[:ref.index(eos)] if eos in ref else ref
    assert out == tok.decode(ref) + "\n" and "tokenizer.json" in err
    # a tokenizer with more tokens than the model is refused with one line
    assert main(["complete", "tiny", "--prompt", "x", "--tokenizer", str(tok_path)]) == 2
    assert "do not belong together" in capsys.readouterr().err


def test_a_big_vocabulary_without_a_tokenizer_is_refused(tmp_path, capsys):
    ckpt = tmp_path / "m.npz"
    save_checkpoint(bpe_model(400), ckpt)
    assert main(["complete", str(ckpt), "--prompt", "x"]) == 2
    assert "--tokenizer tokenizer.json" in capsys.readouterr().err


def test_gguf_tokenizer_matches_the_tokenizer_it_was_written_from(tmp_path):
    tok_path = small_tokenizer(tmp_path)
    spec = json.loads(tok_path.read_text())
    vocab = spec["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    eot = vocab["<|endoftext|>"]
    path = tmp_path / "tok.gguf"
    w = gguf.GGUFWriter(str(path), "bitnet-b1.58")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_merges(merges)
    w.add_token_types([3 if i == eot else 1 for i in range(len(tokens))])
    w.add_eos_token_id(eot)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    ours, theirs = from_gguf(path), from_tokenizer_json(tok_path)
    for text in [*CORPUS[:4], "  spaces   and\ttabs\n\n", "ünïcode ✓✓"]:
        assert ours.encode(text) == theirs.encode(text)
        assert ours.decode(ours.encode(text)) == text
    assert ours.eos == {eot} and ours.decode([eot]) == ""
    assert isinstance(load_tokenizer(path, 400), type(ours))


def test_complete_reads_the_tokenizer_of_a_gguf_model(tmp_path, monkeypatch, capsys):
    from test_import_gguf import ternary_source, write_gguf

    tok_path = small_tokenizer(tmp_path)
    spec = json.loads(tok_path.read_text())
    vocab = spec["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    header = gguf.GGUFWriter.write_header_to_file

    def with_tokenizer(self, *args, **kwargs):   # the BitNet test writer plus a tokenizer
        self.add_tokenizer_model("gpt2")
        self.add_token_list(tokens)
        self.add_token_merges(merges)
        return header(self, *args, **kwargs)

    monkeypatch.setattr(gguf.GGUFWriter, "write_header_to_file", with_tokenizer)
    cfg = config_from_dict({"name": "g", "vocab_size": 320, "hidden": 256, "layers": 1, "max_seq": 64,
                            "defaults": {"attention": {"heads": 4, "kv_heads": 2}, "ffn": {"hidden": 512}}})
    path = tmp_path / "m.gguf"
    write_gguf(path, ternary_source(cfg), "TQ2_0")
    assert main(["complete", str(path), "--prompt", "def main(", "-n", "10"]) == 0
    out, err = capsys.readouterr()
    tok = from_tokenizer_json(tok_path)
    ref = greedy_generate(load_model(path), tok.encode("def main("), 10)
    assert out == tok.decode(ref) + "\n" and "GGUF byte-level BPE" in err


def test_perplexity_through_the_kernels_is_identical_to_the_reference(trained):
    text = ev.heldout_text(trained.tokenizer, ev.training_config(TRAINED)).head(3000, trained.tokenizer)
    got = ev.perplexity(trained.model, text.ids, seq_len=128, core=trained.core, text_bytes=text.predicted_bytes)
    ref = ev.perplexity(trained.model, text.ids, seq_len=128, text_bytes=text.predicted_bytes)
    assert got.nats == ref.nats and got.tokens == 2999 and got.windows == -(-2999 // 127)
    assert got.nats_per_byte == got.nats_per_token   # byte-level: a token is a byte
    assert 1.0 < got.nats_per_token < 3.0            # the trained model, far below ln 256 = 5.5


def test_perplexity_predicts_every_token_once():
    model = bpe_model(50)
    ids = np.random.default_rng(0).integers(0, 50, 200)
    full = ev.perplexity(model, ids, seq_len=96)
    by_hand = sum(ev.window_nats(forward(model, ids[s:s + 96][:-1]), ids[s:s + 96][1:]) for s in range(0, 199, 95))
    assert full.tokens == 199 and full.windows == 3 and full.nats == by_hand


def test_eval_command_on_a_text_file_checks_against_the_reference(tmp_path, capsys):
    text = tmp_path / "t.py"
    text.write_text("".join(CORPUS[:8]))
    assert main(["eval", str(TRAINED), "--text", str(text), "--check"]) == 0
    out = capsys.readouterr().out
    assert "identical" in out and "bits/byte" in out and "perplexity" in out
    assert main(["eval", str(TRAINED), "--text", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read the text file" in capsys.readouterr().err
