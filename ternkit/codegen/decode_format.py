"""The weight format of the one-token (decode) GEMV kernels, chosen apart from the prefill GEMMs'.

Decoding reads every BitLinear weight once per token, so it runs at DRAM speed and a smaller format
pays (avx2 `tl2`, 1.67 bits, reads DRAM 1.10-1.14x faster than `i2`); a prefill GEMM reuses each weight
across many tokens and wants the fastest arithmetic (on avx2 `tl2`'s GEMM is now as fast as `i2`'s).
When the two differ, a runtime keeps two packed copies of each BitLinear (the standalone C runtime's
weights file carries both: ~415 MiB more for 2B4T).

Choices (`--decode-format`):
- `auto`: a format forced for every kernel (`--format`) stays; else the fastest format `ternkit tune`
  measured for the kernel's shape; else the target's `decode_format` for the GEMVs and `prefill_format`
  for the GEMMs (avx2: tl2 for both, one packed copy: its GEMM is as fast as i2's), else the plan's own;
- `same`: the node's prefill kernel's format (one packed copy);
- a format name: that format (refused in one line when the target has no kernels for it).
"""

from __future__ import annotations

from ternkit.codegen import tuning as tuning_file
from ternkit.codegen.plan import KernelSpec, Plan
from ternkit.codegen.target import Target
from ternkit.errors import TernkitError

AUTO, SAME = "auto", "same"


def check(target: Target, choice: str, option: str = "--decode-format") -> str:
    """`choice`, or one line saying which choices `target` has (`--format` takes a format name only)."""
    modes = (AUTO, SAME) if option == "--decode-format" else ()
    if choice in modes or choice in target.formats:
        return choice
    raise TernkitError(f"{option} {choice}: target {target.name!r} has no {choice!r} kernels: use "
                       f"{', '.join([*modes, *target.formats])}")


def choose(plan: Plan, target: Target, choice: str, *, tuning: tuning_file.Tuning | None = None,
           forced: bool = False) -> Plan:
    """`plan` with its one-token kernels in the decode format `choice` and, under `auto`, its prefill
    kernels in the target's prefill format (see the module doc). `forced`: the plan's formats were forced
    by the user (`--format`)."""
    check(target, choice)
    tuned = tuning_file.formats_for(tuning, target)

    def kept(spec: KernelSpec) -> bool:     # --format or a tuning result decides this kernel's format
        return forced or spec.shape_key in tuned

    def prefill(spec: KernelSpec) -> str:
        if choice != AUTO or kept(spec):
            return spec.weight_format
        return target.prefill_format or spec.weight_format

    plan = plan.remap(lambda spec: spec if spec.N == 1 or prefill(spec) == spec.weight_format
                      else tuning_file.specialise(target, spec, tuning, prefill(spec)))

    def decode(spec: KernelSpec) -> str:
        if choice == SAME:
            gemm = plan.prefill_for(plan.users[spec][0])
            return gemm.weight_format if gemm else spec.weight_format
        if choice != AUTO:
            return choice
        if kept(spec):
            return spec.weight_format
        return target.decode_format or spec.weight_format

    return plan.remap(lambda spec: tuning_file.specialise(target, spec, tuning, decode(spec)) if spec.N == 1 else spec)

