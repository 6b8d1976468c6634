"""Reports of a simulation: the printed table, JSON and CSV files, and the energy-breakdown PNG."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ternkit.errors import TernkitError
from ternkit.outputs import check_file, write_file
from ternkit.sim.whole_model import SimReport
from ternkit.sim.simulator import ARITHS, COMPONENTS, arithmetic_pj
from ternkit.textable import table

SHORT = {"select/mult": "select", "adder tree": "tree", "accumulator": "acc", "registers": "regs",
         "weight SRAM": "wSRAM", "act SRAM": "aSRAM", "output SRAM": "oSRAM", "DRAM": "DRAM"}


def _uj(pj: float) -> str:
    return f"{pj / 1e6:,.3f}"


def rows(report: SimReport) -> list[dict]:
    """One dict per layer and the total: cycles, time, utilisation, energy by component (uJ), baselines."""
    out = []
    for part in [*report.layers, report.total]:
        e = part.energy["ternary"]
        ev = part.events["ternary"]
        row = {"part": part.name, "cycles": ev.cycles, "compute": ev.cycles_compute, "fill": ev.cycles_fill,
               "sram_stall": ev.cycles_sram_stall, "dram_stall": ev.cycles_dram_stall,
               "time_us": report.seconds("ternary", part) * 1e6, "utilisation": report.utilisation(part),
               "dram_MB": ev.dram_bytes / 1e6, "dram_min_MB": ev.dram_min_bytes / 1e6,
               "sram_MB": (ev.w_sram_read_bits + ev.w_sram_write_bits + ev.a_sram_read_bits + ev.a_sram_write_bits
                           + ev.o_sram_read_bits + ev.o_sram_write_bits) / 8e6}
        row.update({f"{k}_uJ": v / 1e6 for k, v in e.items()})
        row["energy_uJ"] = part.total_pj() / 1e6
        for a in ARITHS[1:]:
            row[f"{a}_mac_energy_uJ"] = part.total_pj(a) / 1e6
            row[f"{a}_mac_cycles"] = part.cycles(a)
            row[f"saving_vs_{a}"] = part.total_pj(a) / max(part.total_pj(), 1e-30)
        out.append(row)
    return out


def text(report: SimReport) -> str:
    cfg = report.config
    work = " + ".join(w for w in ((f"{report.tokens} decode token(s)" if report.tokens else ""),
                                   (f"{report.prefill}-token prefill" if report.prefill else "")) if w)
    head = [f"model {report.model} on NPU {cfg.name!r}: {cfg.columns}x{cfg.inputs} ternary select units, fan-in "
            f"{cfg.fan_in} ({cfg.levels} levels), {cfg.acc_bits}-bit acc, {cfg.dataflow.replace('_', '-')}, "
            f"{cfg.clock_ghz:g} GHz, DRAM {cfg.dram_gb_per_s:g} GB/s, tech {cfg.tech.name}",
            f"workload: {work}, " + ("BitLinear layers, then the whole step" if report.step else "BitLinear layers only")
            + "; weights "
            + (f"exact ({report.zero_fraction:.1%} zeros)" if report.exact_weights
               else f"statistical ({report.zero_fraction:.0%} zeros assumed)"), ""]
    header = ["part", "cycles", "time us", "util", *(SHORT[c] for c in COMPONENTS), "total uJ", "vs INT8", "vs FP16"]
    body = []
    for part in [*report.layers, report.total]:
        e = part.energy["ternary"]
        body.append([part.name, f"{part.cycles():,}", f"{report.seconds('ternary', part) * 1e6:,.1f}",
                     f"{report.utilisation(part):.0%}", *(_uj(e[c]) for c in COMPONENTS), _uj(part.total_pj()),
                     f"{part.total_pj('int8') / max(part.total_pj(), 1e-30):.2f}x",
                     f"{part.total_pj('fp16') / max(part.total_pj(), 1e-30):.2f}x"])
    t = report.total
    lines = head + [table(header, body, right_from=1), "", "energy in uJ; 'vs' = baseline energy / ternary energy (higher = ternary saves more)"]
    base = [["architecture", "cycles", "time us", "energy uJ", "arithmetic uJ", "DRAM uJ", "adders", "muxes", "multipliers"]]
    area = report.area()
    for a, name in zip(ARITHS, ("ternary adder tree", "INT8 MAC array", "FP16 MAC array")):
        base.append([name, f"{t.cycles(a):,}", f"{report.seconds(a) * 1e6:,.1f}", _uj(t.total_pj(a)),
                     _uj(arithmetic_pj(t.energy[a])), _uj(t.energy[a]["DRAM"]), f"{area[a]['adders']:,}",
                     f"{area[a]['muxes']:,}", f"{area[a]['multipliers']:,}"])
    ev = t.events["ternary"]
    lines += ["", *mapping_text(report)]
    if report.step:
        lines += ["", *whole_step_text(report)]
    lines += ["", table(base[0], base[1:], right_from=1), "",
              f"BitLinear DRAM traffic {ev.dram_bytes / 1e6:,.1f} MB: {ev.dram_bytes / max(ev.dram_min_bytes, 1e-30):.2f}x the "
              f"{ev.dram_min_bytes / 1e6:,.1f} MB of every weight, activation and output moved once, "
              f"{ev.dram_bytes / max(report.dram_bound_bytes, 1e-30):.2f}x the {report.dram_bound_bytes / 1e6:,.1f} MB "
              f"({report.dram_bound_bytes / max(ev.dram_min_bytes, 1e-30):.2f}x the minimum) that any schedule must move "
              f"with these buffers (segment bound, ternkit/sim/mapper.py)",
              f"BitLinear savings: {report.savings('int8'):.2f}x vs INT8 MAC, {report.savings('fp16'):.2f}x vs FP16 MAC in total "
              f"energy; arithmetic alone {report.savings('int8', True):.1f}x and {report.savings('fp16', True):.1f}x"]
    return "\n".join(lines)


def mapping_text(report: SimReport) -> list[str]:
    """Each kernel shape's mapping (ternkit/sim/mapper.py) and its DRAM bytes against both lower bounds."""
    header = ["kernel M x K x N", "order", "m-block", "token tile", "K chunk", "DRAM MB", "once MB", "x once",
              "buffer bound MB", "x bound"]
    body = [[f"{M} x {K} x {N}", m.order, f"{m.m_block}", f"{m.n_tile}", f"{m.k_chunk or K}",
             f"{m.dram_bytes / 1e6:,.3f}", f"{m.dram_min / 1e6:,.3f}", f"{m.dram_bytes / m.dram_min:.2f}",
             f"{m.dram_bound / 1e6:,.3f}", f"{m.dram_bytes / m.dram_bound:.2f}"]
            for (M, K, N), m in sorted(report.mappings.items(), key=lambda kv: (kv[0][2], kv[0]))]
    ev = report.total.events["ternary"]
    once = max(ev.dram_min_bytes, 1e-30)
    return ["mapper (ternary array, one call of each kernel); 'once': every weight, activation and output moved "
            "once; 'buffer bound': the least any schedule moves with these buffers", table(header, body, right_from=1),
            f"all BitLinear calls: the mappings move {ev.dram_bytes / once:.2f}x the moved-once minimum; no schedule "
            f"on these buffers moves less than {report.dram_bound_bytes / once:.2f}x it (the buffer bound)"]


def _array_row(name: str, part) -> dict:
    e = part.energy["ternary"]
    return {"name": name, "cycles": part.cycles(), "dram_bytes": part.events["ternary"].dram_bytes,
            "compute": e["select/mult"] + e["adder tree"] + e["accumulator"] + e["registers"],
            "SRAM": e["weight SRAM"] + e["act SRAM"] + e["output SRAM"], "DRAM": e["DRAM"]}


def step_rows(report: SimReport) -> list[dict]:
    """The whole step by component (cycles, DRAM bytes, compute / SRAM / DRAM pJ): the BitLinears on the
    array, the rest on the vector unit (a ternary LM head's matrix on the array, on its row)."""
    out = [_array_row("BitLinears (array)", report.total)]
    for c in report.step:
        row = {"name": c.name, "cycles": c.cycles, "dram_bytes": c.dram_bytes, **c.energy}
        if c.name == "LM head" and report.head:
            head = _array_row("", report.head)
            row = {k: (row[k] + head[k] if k != "name" else "LM head (array)") for k in row}
        out.append(row)
    return out


def whole_step_text(report: SimReport) -> list[str]:
    """The whole step by component: the BitLinears on the array, the rest on the vector unit."""
    cfg = report.config
    hz = cfg.clock_ghz * 1e9
    total_pj = report.whole_pj()
    header = ["component", "cycles", "time us", "DRAM MB", "compute uJ", "SRAM uJ", "DRAM uJ", "total uJ", "share"]
    rows = step_rows(report)
    body = []
    for r in rows:
        pj = r["compute"] + r["SRAM"] + r["DRAM"]
        body.append([r["name"], f"{r['cycles']:,.0f}", f"{r['cycles'] / hz * 1e6:,.1f}", f"{r['dram_bytes'] / 1e6:,.2f}",
                     _uj(r["compute"]), _uj(r["SRAM"]), _uj(r["DRAM"]), _uj(pj), f"{pj / total_pj:.1%}"])
    if report.static_mw is not None:
        body.append([f"static ({report.static_mw:.2f} mW)", "", "", "", "", "", "", _uj(report.static_pj()),
                     f"{report.static_pj() / total_pj:.1%}"])
    body.append(["whole step", f"{report.whole_seconds() * hz:,.0f}", f"{report.whole_seconds() * 1e6:,.1f}",
                 f"{sum(r['dram_bytes'] for r in rows) / 1e6:,.2f}", "", "", "", _uj(total_pj), "100%"])
    return [f"whole step: context {report.context} tokens, KV cache {report.kv_bits}-bit, LM head {report.lm_head}, "
            f"vector unit {cfg.vector_lanes} lanes (see ternkit/sim/step.py for what each component counts)",
            table(header, body, right_from=1), "",
            f"{report.tokens_per_s():,.2f} tokens/s, {report.tokens_per_j():,.2f} tokens/J, "
            f"{report.tops_per_w():.3f} effective TOPS/W; whole-step dynamic-energy savings "
            f"{report.dynamic_pj('int8') / report.dynamic_pj():.2f}x vs INT8 MAC, "
            f"{report.dynamic_pj('fp16') / report.dynamic_pj():.2f}x vs FP16 MAC (the vector-unit work is the same "
            f"on all three)", _area_line(report)]


def _area_line(report: SimReport) -> str:
    if report.area_mm2 is None:
        return "static power and area: not modelled (--area synthesizes the column with yosys)"
    a, cfg = report.area_mm2, report.config
    line = (f"area {a['total']:.3f} mm2 (array logic {a['array logic']:.3f} from the synthesized column, SRAM "
            f"{a['SRAM']:.3f}; vector unit, control and PHY not included), static {report.static_mw:.2f} mW, "
            f"the column's longest path allows {report.fmax_ghz:.2f} GHz")
    if cfg.clock_ghz > report.fmax_ghz:
        line += f": the configured {cfg.clock_ghz:g} GHz is faster than that, so these times are optimistic"
    return line


def as_json(report: SimReport) -> str:
    cfg = report.config
    return json.dumps({
        "model": report.model, "npu": cfg.name, "tokens": report.tokens, "prefill": report.prefill,
        "tech": {"name": cfg.tech.name, "source": cfg.tech.source, "assumptions": cfg.tech.assumptions},
        "zero_fraction": report.zero_fraction, "exact_weights": report.exact_weights,
        "area": report.area(), "rows": rows(report), "dram_bound_bytes": report.dram_bound_bytes,
        "mappings": [{"M": M, "K": K, "N": N, "order": m.order, "m_block": m.m_block, "n_tile": m.n_tile,
                      "k_chunk": m.k_chunk or K, "dram_bytes": m.dram_bytes, "psum_spill_bytes": m.p_dram,
                      "dram_min_bytes": m.dram_min,
                      "dram_bound_bytes": m.dram_bound}
                     for (M, K, N), m in sorted(report.mappings.items())],
        "whole_step": None if not report.step else {
            "context": report.context, "kv_bits": report.kv_bits, "lm_head": report.lm_head,
            "components": [{"name": r["name"], "cycles": r["cycles"], "dram_MB": r["dram_bytes"] / 1e6,
                            **{f"{k}_uJ": r[k] / 1e6 for k in ("compute", "SRAM", "DRAM")}} for r in step_rows(report)],
            "energy_uJ": report.whole_pj() / 1e6, "seconds": report.whole_seconds(),
            "tokens_per_s": report.tokens_per_s(), "tokens_per_J": report.tokens_per_j(),
            "tops_per_w": report.tops_per_w(),
            "static_mW": report.static_mw, "static_uJ": report.static_pj() / 1e6, "area_mm2": report.area_mm2,
            "fmax_ghz": report.fmax_ghz,
            "vs_int8": report.dynamic_pj("int8") / report.dynamic_pj(),
            "vs_fp16": report.dynamic_pj("fp16") / report.dynamic_pj()},
        "savings": {"vs_int8": report.savings("int8"), "vs_fp16": report.savings("fp16"),
                    "arithmetic_vs_int8": report.savings("int8", True), "arithmetic_vs_fp16": report.savings("fp16", True)},
    }, indent=2)


def as_csv(table: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(table[0]))
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file; a file ternkit
    did not write is never replaced (`ternkit.outputs`)."""
    write_file(path, data, "--plot" if Path(path).suffix.lower() == ".png" else "--out")


def check_out(path: Path, plot: bool = False) -> None:
    """Before simulating: is `path` a usable --out (.json/.csv) or --plot (.png) file?"""
    flag, suffixes = ("--plot", (".png",)) if plot else ("--out", (".json", ".csv"))
    if Path(path).suffix.lower() not in suffixes:
        raise TernkitError(f"{flag} {path}: use a {' or '.join(suffixes)} file name")
    check_file(path, flag)


def write(report: SimReport, path: Path) -> None:
    check_out(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        write_atomic(path, as_json(report))
    else:
        write_atomic(path, as_csv(rows(report)))


def plot(report: SimReport, path: Path) -> None:
    """Stacked bars of energy by component: ternary array vs the INT8 and FP16 MAC arrays."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check_out(path, plot=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    names = ["ternary\nadder tree", "INT8\nMAC", "FP16\nMAC"]
    # left: everything; right: on chip only, where the arithmetic is not drowned by DRAM
    for ax, comps, title in ((axes[0], COMPONENTS, "total"), (axes[1], COMPONENTS[:-1], "on chip (no DRAM)")):
        bottom = [0.0, 0.0, 0.0]
        for i, comp in enumerate(COMPONENTS):
            vals = [report.total.energy[a][comp] / 1e6 if comp in comps else 0.0 for a in ARITHS]
            ax.bar(names, vals, bottom=bottom, label=comp, color=f"C{i}")
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_ylabel("energy (uJ)")
        ax.set_title(title, fontsize=9)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"{report.model} on {report.config.name} ({report.config.tech.name}): "
                 f"{report.tokens} decode + {report.prefill} prefill tokens", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, buf.getvalue())
