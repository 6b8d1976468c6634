"""`ternkit complete MODEL --prompt TEXT`: text in, text out through the compiled kernels. The
continuation streams to stdout as it is generated; tokens/s for prefill and decode go to stderr."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("complete", help="continue a text prompt with a model, through the compiled kernels")
    p.add_argument("model", help="built-in name, YAML spec, checkpoint (.npz/.safetensors) or .gguf")
    p.add_argument("--prompt", "-p", required=True, help="the text to continue")
    p.add_argument("--max-tokens", "-n", type=int, default=64, help="tokens to generate at most (default 64)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); > 0 samples")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling: keep this probability mass (default 1)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed: the same seed gives the same text")
    p.add_argument("--target", "-t", default=None, help="kernel target (default: the best this CPU runs)")
    p.add_argument("--threads", type=int, default=1, help="threads per kernel call (default 1)")
    p.add_argument("--tokenizer", type=Path, default=None,
                   help="a Hugging Face tokenizer.json (default: the GGUF's own, a tokenizer.json beside the "
                        "checkpoint, or bytes for a 256-token vocabulary)")
    p.add_argument("--reference", action="store_true", help="run the numpy reference instead of the kernels")
    p.add_argument("--echo", action="store_true", help="print the prompt before the continuation")
    p.set_defaults(func=run)


def run(args) -> int:
    from ternkit.errors import TernkitError
    from ternkit.runtime.generation import Sampling
    from ternkit.runtime.textmodel import open_text_model

    if args.threads < 1:
        raise TernkitError(f"--threads must be at least 1, got {args.threads}")
    if args.max_tokens < 1:
        raise TernkitError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    sampling = Sampling(args.temperature, args.top_p, args.seed)
    tm = open_text_model(args.model, target=args.target, tokenizer=args.tokenizer, reference=args.reference,
                         threads=args.threads)

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    if args.echo:
        write(args.prompt)
    gen = tm.complete(args.prompt, args.max_tokens, sampling=sampling, on_text=write)
    write("\n")
    why = {"eos": ", stopped at end-of-text", "context": ", stopped at the model's context length"}.get(gen.stopped, "")
    print(f"[{tm.engine}, {tm.tokenizer.name}] prefill {gen.prompt_tokens} tokens: {gen.prefill_tokens_per_s:,.1f} "
          f"tok/s; decode {gen.decode_steps} tokens: {gen.decode_tokens_per_s:,.1f} tok/s{why}", file=sys.stderr)
    return 0
