"""`ternkit train CONFIG.yaml` (STE training) and `ternkit train --experiment parity|distill`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ternkit.errors import TernkitError


def register(sub) -> None:
    from ternkit.commands._args import positive

    p = sub.add_parser("train", help="train a model in the numpy reference (STE), or run a built-in experiment",
                       description="Train a ternary (b1.58), binary (v1) or fp32 model on the Python standard "
                                   "library's sources (byte-level), or run a built-in experiment.")
    p.add_argument("config", nargs="?", help="training config YAML (see examples/train-tiny.yaml); "
                                              "with --experiment it is the base config (optional)")
    p.add_argument("--experiment", choices=("parity", "distill"),
                   help="parity: FP32 vs ternary vs binary on one token budget; "
                        "distill: ternary student from scratch vs distilled from an FP32 teacher")
    p.add_argument("--resume", action="store_true", help="continue from CHECKPOINT_DIR/last.safetensors")
    p.add_argument("--steps", type=positive, help="override train.steps")
    p.add_argument("--out", type=Path, default=Path("runs"), help="experiment output folder (default: runs)")
    p.add_argument("--teacher", help="distill: teacher checkpoint (default: train an FP32 one under --out)")
    p.add_argument("--temperature", type=float, default=1.0, help="distill: KL temperature (default 1)")
    p.add_argument("--kl-weight", type=float, default=1.0, help="distill: weight of T²·KL (default 1)")
    p.add_argument("--attention-weight", type=float, default=1.0,
                   help="distill: weight of the attention-relation KL in the relation runs (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ternkit.train import experiments
    from ternkit.train.config import config_from_mapping, load_train_config
    from ternkit.train.loop import train

    if args.config is None and args.experiment is None:
        raise TernkitError("give a training config YAML (e.g. examples/train-tiny.yaml) or --experiment parity|distill")
    cfg = load_train_config(args.config) if args.config else config_from_mapping(experiments.DEFAULT_EXPERIMENT)
    if args.steps is not None:
        cfg = replace(cfg, steps=args.steps)
    progress = not args.no_progress
    if args.experiment == "parity":
        print(experiments.parity(cfg, args.out / "parity", progress))
        return 0
    if args.experiment == "distill":
        print(experiments.distill(cfg, args.out / "parity", progress, teacher=args.teacher,
                                  temperature=args.temperature, kl_weight=args.kl_weight,
                                  attention_weight=args.attention_weight))
        return 0
    res = train(cfg, resume=args.resume, progress=progress)
    print(f"step {res.step}/{cfg.steps}: validation loss {res.val_loss:.4f} nats/byte, "
          f"{res.bits_per_byte:.4f} bits/byte, perplexity {res.perplexity:.3f}; checkpoint {res.checkpoint}")
    return 0
