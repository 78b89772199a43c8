"""A SimPy + numpy model of a fibre ISP: topology, optics, faults, customers, operations.

>>> from simulator import Simulation, load_scenario
>>> sim = Simulation(load_scenario("tiny"), seed=3)
>>> sim.topology.n_onus
64
"""

from simulator.engine import Simulation
from simulator.output import simulate_to_dir
from simulator.scenario import Scenario, load_scenario

__all__ = ["Simulation", "Scenario", "load_scenario", "simulate_to_dir"]
