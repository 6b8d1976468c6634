"""The `ternkit run` report: one dataclass, rendered as text (terminal), Markdown and JSON (numbers stay
numbers in the JSON; only the text and Markdown format them)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ternkit.outputs import check_file, write_file

FILES = ("report.json", "report.md")


@dataclass
class RunReport:
    model: str
    layers: int
    hidden: int
    parameters: int
    bitlinears: int
    weight_zeros: float
    target: str | None = None
    emulated: bool = False        # target intrinsics emulated (neon through SIMDe on x86): not its speed
    kernels: int = 0
    compile_seconds: float | None = None
    exact: bool | None = None
    bitlinear_calls_checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    max_logit_diff: float | None = None
    tokens_generated: list[int] = field(default_factory=list)
    tokens_reference: list[int] = field(default_factory=list)
    prefill_tokens: int = 0
    decode_tokens: int = 0
    prefill_tps: dict[str, float] = field(default_factory=dict)   # "kernels"/"reference" -> tokens/s
    decode_tps: dict[str, float] = field(default_factory=dict)
    npu: dict | None = None   # config, cycles, seconds, energy_uj, savings_vs_int8/fp16, arithmetic_savings_vs_fp16
    sample: str | None = None     # prompt -> text the kernels generated (byte-level models)
    seconds: float = 0.0

    def rows(self) -> list[tuple[str, str]]:
        r = [("model", f"{self.model}: {self.layers} layers, hidden {self.hidden}, {self.parameters:,} params, "
                       f"{self.bitlinears} BitLinears ({self.weight_zeros:.1%} zero weights)")]
        if self.target:  # always set by `ternkit run`; a report built by hand may lack kernels
            note = " (EMULATED on this machine with SIMDe: correctness only, not its speed)" if self.emulated else ""
            r.append(("target", f"{self.target}{note}: {self.kernels} kernels compiled in {self.compile_seconds:.2f} s"))
            verdict = "bit-exact" if self.exact else f"MISMATCH in {len(self.mismatches)} calls ({', '.join(self.mismatches[:3])})"
            r.append(("validation", f"{verdict}: {self.bitlinear_calls_checked} BitLinear calls compared, "
                                    f"max |logit diff| {self.max_logit_diff:.2e}, greedy tokens "
                                    f"{'identical' if self.tokens_generated == self.tokens_reference else 'DIFFER'} "
                                    f"({len(self.tokens_generated)} generated)"))
        for what, tps, n in (("prefill", self.prefill_tps, self.prefill_tokens), ("decode", self.decode_tps, self.decode_tokens)):
            parts = [f"{k} {v:,.1f} tok/s" for k, v in tps.items()]
            if "kernels" in tps and "reference" in tps:
                parts.append(f"x{tps['kernels'] / tps['reference']:.2f} vs numpy")
            r.append((what, f"{n} tokens: " + ", ".join(parts)))
        if self.sample:
            r.append(("text", self.sample))
        if self.npu:
            n = self.npu
            r.append(("npu", f"config {n['config']}, cycles {n['cycles']:,}, time {n['seconds'] * 1e6:,.1f} us, "
                             f"energy {n['energy_uj']:,.3f} uJ, vs INT8 MAC {n['savings_vs_int8']:.2f}x less energy, "
                             f"vs FP16 MAC {n['savings_vs_fp16']:.2f}x less energy "
                             f"({n['arithmetic_savings_vs_fp16']:.1f}x arithmetic)"))
        r.append(("time", f"{self.seconds:.1f} s"))
        return r

    def text(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in self.rows())

    def markdown(self) -> str:
        lines = [f"# ternkit run: {self.model}", "", "| | |", "| --- | --- |"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in self.rows()]
        return "\n".join(lines) + "\n"

    def json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @staticmethod
    def check_out(out: Path) -> None:
        """Before the run: can report.json and report.md be written in `out` (`ternkit.outputs` rule)?"""
        for name in FILES:
            check_file(Path(out) / name, "--out")

    def write(self, out: Path) -> list[Path]:
        """report.json + report.md in `out`, each written to a temporary name and renamed into place."""
        return [write_file(Path(out) / name, text, "--out") for name, text in zip(FILES, (self.json(), self.markdown()))]


def _cell(text: str) -> str:
    """A Markdown table cell: `|` escaped, so `max |logit diff|` does not split the row."""
    return text.replace("|", "\\|")
