"""A model ready for text: its graph, its tokenizer and the integer core its BitLinears run on (the
compiled kernels of a target, or numpy). `ternkit complete` and `ternkit eval` are thin shells over it.

    tm = open_text_model("examples/tiny-trained.safetensors")          # best native target
    gen = tm.complete("import os\\n", 40, on_text=print)               # streams text pieces
    gen.prefill_tokens_per_s, gen.decode_tokens_per_s
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ternkit.graph.modelgraph import ModelGraph
from ternkit.reference.forward import IntegerCore, reference_core
from ternkit.runtime.generation import Generation, Sampling, generate
from ternkit.runtime.tokenizer import Tokenizer, load_tokenizer

PREFILL_TOKENS = 64   # the GEMM kernels are specialised for this many tokens and run any count


@dataclass
class TextModel:
    model: ModelGraph
    tokenizer: Tokenizer
    core: IntegerCore
    engine: str           # "avx2 kernels", "numpy reference", ...

    def complete(self, prompt: str, max_new: int, *, sampling: Sampling = Sampling(),
                 on_text: Callable[[str], None] | None = None) -> Generation:
        """Tokenize `prompt`, generate, and hand each new piece of text to `on_text` as it is ready."""
        ids = self.tokenizer.encode(prompt)
        stream = self.tokenizer.stream()
        emit = (lambda t: on_text(piece) if (piece := stream(t)) else None) if on_text else None
        gen = generate(self.model, ids, max_new, core=self.core, sampling=sampling, stop=self.tokenizer.eos,
                       on_token=emit)
        if on_text and (rest := stream.flush()):
            on_text(rest)
        return gen


def lower_for_text(model: ModelGraph, target: str | None, threads: int = 1):
    """The model's kernels compiled for `target` (default: the best this CPU runs natively)."""
    from ternkit.codegen.targets import native_target
    from ternkit.runtime.lowered import lower_model

    t = native_target(target, "run")
    return lower_model(model, t.name, tokens=(1, PREFILL_TOKENS), threads=threads)


def open_text_model(source: str | Path, *, target: str | None = None, tokenizer: str | Path | None = None,
                    reference: bool = False, threads: int = 1, model: ModelGraph | None = None) -> TextModel:
    """Load `source` (built-in name, YAML, checkpoint, GGUF) and its tokenizer, and compile its kernels
    (`reference=True`: the numpy integer core instead)."""
    from ternkit.graph import load_model

    if model is None:
        model = load_model(source, with_params=False)   # checkpoints come with their weights
    tok = load_tokenizer(source, model.config.vocab_size, tokenizer)   # refuse before drawing random weights
    if model.params is None:   # random weights; above 50 M parameters as packed ternary codes
        model = load_model(source, packed_random=True)
    if reference:
        return TextModel(model, tok, reference_core, "numpy reference")
    lowered = lower_for_text(model, target, threads)
    return TextModel(model, tok, lowered.core, f"{lowered.target} kernels")
