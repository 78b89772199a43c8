import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from simulator.output import simulate_runs, simulate_to_dir
from simulator.scenario import load_scenario


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_scenario_and_seed_give_byte_identical_files(tmp_path):
    sc = load_scenario("tiny", days=1)
    a = tree_hashes(simulate_to_dir(sc, tmp_path / "a", seed=11))
    b = tree_hashes(simulate_to_dir(sc, tmp_path / "b", seed=11))
    c = tree_hashes(simulate_to_dir(sc, tmp_path / "c", seed=12))
    assert len(a) > 8
    assert a == b
    telemetry = [k for k in a if k.startswith("lake/raw/telemetry")]
    assert any(a[k] != c.get(k) for k in telemetry)


def test_runs_simulated_in_two_processes_are_the_runs_of_one_after_the_other(tmp_path):
    """notebook 01's two runs side by side: the files of each depend on its seed alone."""
    sc = load_scenario("tiny", days=1)
    plan = [(sc, tmp_path / "p" / "train", 11), (sc, tmp_path / "p" / "test", 12)]
    out = simulate_runs(plan, ingest=False, workers=2)
    assert out == [d for _, d, _ in plan]
    for _, d, seed in plan:
        alone = tree_hashes(simulate_to_dir(sc, tmp_path / "s" / d.name, seed=seed))
        assert len(alone) > 8 and tree_hashes(d) == alone
    assert tree_hashes(plan[0][1]) != tree_hashes(plan[1][1])
    with pytest.raises(ValueError, match="same directory"):
        simulate_runs([(sc, tmp_path / "x", 1), (sc, tmp_path / "x", 2)], workers=2)


def test_raw_is_messy_as_configured(tmp_path):
    sc = load_scenario("tiny", days=2)
    dq = sc.data_quality.model_dump() | {"duplicate_rate": 0.02, "late_rate": 0.01}
    run = simulate_to_dir(sc.with_overrides(data_quality=dq), tmp_path / "r", seed=3)
    table = pq.read_table(run / "lake" / "raw" / "telemetry").to_pandas()
    n_onus = 64
    ticks = sc.n_ticks
    assert len(table) < n_onus * ticks * 1.05
    dup = table.duplicated(["onu_id", "ts"]).sum()
    assert dup > 0.01 * len(table)
    late = (table["received_at"] - table["ts"]).dt.total_seconds() > 3600
    assert late.mean() > 0.005
    # Late rows land in the partition of the day they were received.
    day = table["received_at"].dt.strftime("%Y-%m-%d")
    assert (table["date"].astype(str) == day).mean() > 0.99
    # Timestamps are skewed by a few seconds from the 5-minute grid.
    off = table["ts"].dt.second + 60 * (table["ts"].dt.minute % 5)
    assert (off != 0).mean() > 0.5


def test_refuses_to_overwrite_unless_asked(tmp_path):
    sc = load_scenario("tiny", days=0.1)
    simulate_to_dir(sc, tmp_path / "r")
    with pytest.raises(FileExistsError, match="--overwrite"):
        simulate_to_dir(sc, tmp_path / "r")
    simulate_to_dir(sc, tmp_path / "r", overwrite=True)
    assert not (tmp_path / "r.partial").exists()


def test_memory_flat_in_days_writer_buffers_at_most_a_block(tmp_path):
    """The writer never holds more than one block of ticks (flush_ticks) in memory."""
    from simulator.engine import Simulation
    from simulator.output import RunWriter

    sc = load_scenario("tiny", days=1)
    writer = RunWriter(tmp_path / "w", flush_ticks=12)
    sizes = []

    class Probe:
        def on_tick(self, sim, state, events):
            sizes.append(len(writer._block))

    sim = Simulation(sc, sinks=[writer, Probe()])
    sim.run()
    writer.close()
    assert max(sizes) <= 12
