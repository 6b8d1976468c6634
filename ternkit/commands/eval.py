"""`ternkit eval MODEL [--text FILE]`: perplexity, nats/token and bits/byte of a model through the
compiled kernels, on the held-out split of the stdlib corpus (the split the checkpoint was trained
against) or on a text file; `--check` recomputes it with the numpy reference and compares."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("eval", help="perplexity of a model on held-out text, through the compiled kernels")
    p.add_argument("model", help="checkpoint (.safetensors/.npz/.gguf), YAML spec or built-in name")
    p.add_argument("--text", type=Path, default=None,
                   help="a UTF-8 text file (default: the held-out split of the stdlib byte corpus)")
    p.add_argument("--seq-len", type=int, default=None,
                   help="window length (default: the checkpoint's training seq_len, else the model's max_seq)")
    p.add_argument("--max-tokens", type=int, default=None, help="evaluate only the first N tokens of the text")
    p.add_argument("--target", "-t", default=None, help="kernel target (default: the best this CPU runs)")
    p.add_argument("--tokenizer", type=Path, default=None, help="a Hugging Face tokenizer.json (see `complete`)")
    p.add_argument("--reference", action="store_true", help="run the numpy reference instead of the kernels")
    p.add_argument("--check", action="store_true",
                   help="also compute it with the numpy reference and say whether the two are identical")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from ternkit.errors import TernkitError
    from ternkit.runtime import evaluate as ev
    from ternkit.runtime.textmodel import open_text_model

    if args.max_tokens is not None and args.max_tokens < 2:
        raise TernkitError(f"--max-tokens must be at least 2, got {args.max_tokens}")
    train_cfg = ev.training_config(args.model)
    tm = open_text_model(args.model, target=args.target, tokenizer=args.tokenizer, reference=args.reference)
    text = ev.file_text(args.text, tm.tokenizer) if args.text else ev.heldout_text(tm.tokenizer, train_cfg)
    if args.max_tokens is not None:
        text = text.head(args.max_tokens, tm.tokenizer)
    bars: dict[str, tqdm] = {}

    def progress(name: str, done: int, total: int) -> None:
        bar = bars.get(name) or bars.setdefault(name, tqdm(total=total, desc=f"eval ({name})", unit="window",
                                                           leave=False, disable=None))
        bar.update(done - bar.n)

    try:
        r, ref = ev.evaluate_text_model(tm, text, seq_len=args.seq_len, train_config=train_cfg, check=args.check,
                                        on_window=progress)
    finally:
        for bar in bars.values():
            bar.close()
    print(f"model    {tm.model.name} ({args.model}): {tm.engine}, tokenizer {tm.tokenizer.name}")
    print(f"text     {text.source}: {text.text_bytes:,} bytes, {r.tokens:,} tokens predicted in {r.windows:,} windows "
          f"of {r.seq_len}")
    print(f"loss     {r.nats_per_token:.6f} nats/token, perplexity {r.perplexity:.4f}, "
          f"{r.nats_per_byte:.6f} nats/byte = {r.bits_per_byte:.4f} bits/byte")
    if ref is None:
        return 0
    same = ref.nats == r.nats
    print(f"check    numpy reference: {ref.nats_per_token:.6f} nats/token, total {ref.nats!r} vs {r.nats!r} nats: "
          f"{'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1
