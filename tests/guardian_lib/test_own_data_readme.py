"""examples/own-data/README.md states what its example data gives (ticket counts).

Step 3 of the README prints the ticket label report of the `small` week (seed 7) that
step 0 exports; the counts it quotes are computed here from that same export (the step 0
and step 3 commands are read from the README), so the page cannot drift from the data.
The row counts of the line need the whole week's features (an import of 4 million
telemetry rows): they are not checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

README = Path(__file__).resolve().parents[2] / "examples" / "own-data" / "README.md"


def _readme() -> dict[str, str]:
    """Step 0's scenario and seed, step 3's ``--until`` and the counts its report quotes."""
    text = README.read_text(encoding="utf-8")
    sim = re.search(r"guardian simulate --scenario (\S+) --seed (\d+)", text)
    until = re.search(r"guardian train --run \S+ --labels tickets[^`]*?--until (\S+)", text, re.S)
    block = re.search(r"```\n(tickets: .*?)\n```", text, re.S)
    assert sim and until and block, "the README's steps 0 and 3 moved: update this test"
    quoted = " ".join(block.group(1).split())  # the code block wraps the line
    return {"scenario": sim.group(1), "seed": sim.group(2), "until": until.group(1),
            "counts": quoted.split("; ")[0]}  # fmt: skip


@pytest.mark.slow  # a week of the small network, simulated and exported
def test_the_ticket_counts_of_step_3_are_what_the_example_export_gives(tmp_path):
    from guardian_lib.label_map import load_label_map
    from guardian_lib.labels_tickets import count_tickets, load_ticket_inputs
    from guardian_lib.models.training import _utc
    from guardian_lib.models.workflow import _report_line
    from guardian_lib.owndata import import_source
    from simulator.operator_export import export_operator
    from simulator.output import simulate_to_dir
    from simulator.scenario import load_scenario

    quoted = _readme()
    seed = int(quoted["seed"])
    run = simulate_to_dir(load_scenario(quoted["scenario"]), tmp_path / "sim", seed=seed)
    export = tmp_path / "acme"
    # no telemetry files (for the features, not the counts; the other files are the same)
    export_operator(run, export, seed=seed, telemetry=False)
    # the tables the counts read
    mapping = yaml.safe_load((export / "mapping.yaml").read_text(encoding="utf-8"))
    keep = ("olts", "pons", "splitters", "onus", "customers", "tickets")
    mapping["tables"] = {k: v for k, v in mapping["tables"].items() if k in keep}
    (export / "counts.yaml").write_text(yaml.safe_dump(mapping), encoding="utf-8")
    import_source(tmp_path / "wh", export / "counts.yaml", source_dir=export)
    inputs = load_ticket_inputs(tmp_path / "wh")
    _, report = count_tickets(
        inputs["tickets"], load_label_map(export / "labels.yaml"), inputs["customers"],
        observed_until=_utc(quoted["until"]),
    )  # fmt: skip
    assert _report_line(report.to_dict()).split("; ")[0] == quoted["counts"]
