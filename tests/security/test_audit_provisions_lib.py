"""Security audit: provision scripts and virtual parameters cannot exhaust CPU or memory,
or crash a session or an NBI call."""

from __future__ import annotations

import pytest

from acs_emulator.cwmp.provisions import ProvisionError, parse_script, plan_provisions
from acs_emulator.cwmp.virtual import VirtualParameterError, check_virtual_parameter


def test_block_comments_still_work_across_lines():
    script = 'declare("A.B", null, {value: 1}) /* one */\n/* two\nlines */ declare("A.C", null, {value: 2})'
    assert [d.path for d in parse_script(script)] == ["A.B", "A.C"]


def test_unterminated_comments_fail_at_once_with_their_position():
    # "/*a" * 20000 took 16 s of the event loop (each "/*" rescanned the rest)
    with pytest.raises(ProvisionError, match="line 1 col 1: unterminated comment"):
        parse_script("/*a" * 20000)
    with pytest.raises(ProvisionError, match="line 2 col 3: unterminated comment"):
        parse_script('declare("A", null, {value: 1})\n  /* never closed')


@pytest.mark.parametrize(
    "value, phrase",
    [
        ("9" * 5000, "number literal longer than 32"),  # int() raised ValueError → HTTP 500
        ("*".join(["9999999999"] * 3000), "integer result beyond"),
        ("*".join(["Date.now()"] * 50), "integer result beyond"),
        ("1e300*1e300", "not finite"),
        ("1e300*1e300-1e300*1e300", "not finite"),
        ("+".join(["args[0]"] * 200), "string result longer than 16384"),
    ],
)
def test_literals_and_arithmetic_are_bounded(value, phrase):
    with pytest.raises(ProvisionError, match=phrase):
        parse_script('declare("A.B", null, {value: ' + value + "})", ["x" * 1000])


def test_a_bounded_product_still_plans_a_set():
    plan = plan_provisions({}, [["p", 7]], {"p": 'declare("A.B", null, {value: args[0]*1000})'})
    assert plan.set == [["A.B", 7000, "auto"]]


@pytest.mark.parametrize("value", [10**400, float("nan"), float("inf"), True, "2", None])
def test_virtual_parameter_numbers_must_be_finite(value):
    """10**400 (valid JSON) made float() raise OverflowError: HTTP 500 at PUT."""
    spec = {"sources": [{"path": "Device.X.Y", "scale": value}]}
    with pytest.raises(VirtualParameterError, match=r"sources\[0\]\.scale: expected a finite"):
        check_virtual_parameter("rx", spec)
    assert check_virtual_parameter("rx", {"sources": [{"path": "Device.X.Y", "offset": -3}]})
