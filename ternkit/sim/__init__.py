"""The multiplier-free NPU: architecture configs, technology energy tables, the analytic cycle/energy
simulator with INT8/FP16 MAC baselines, the generated C cycle model, and reports."""

from ternkit.sim.config import NpuConfig, config_from_dict, load_npu_config
from ternkit.sim.whole_model import SimReport, simulate_model
from ternkit.sim.simulator import Events, energy, kernel_events

simulate = simulate_model  # `ternkit run` calls ternkit.sim.simulate(model)

__all__ = ["Events", "NpuConfig", "SimReport", "config_from_dict", "energy", "kernel_events", "load_npu_config",
           "simulate", "simulate_model"]
