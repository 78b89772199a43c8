"""A SimPy + numpy model of a fibre ISP: topology, optics, faults, customers, operations.

>>> from simulator import Simulation, load_scenario
>>> sim = Simulation(load_scenario("tiny"), seed=3)
>>> sim.topology.n_onus
64

Names are imported on first use (PEP 562), so that the ``guardian`` CLI starts fast.
"""

from guardian_lib._lazy import lazy_exports

_EXPORTS = {
    "Simulation": "simulator.engine",
    "Scenario": "simulator.scenario",
    "load_scenario": "simulator.scenario",
    "simulate_to_dir": "simulator.output",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
