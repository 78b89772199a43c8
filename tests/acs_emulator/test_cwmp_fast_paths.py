"""The ACS's per-Inform fast paths give the same answers as the plain ones."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from acs_emulator.cwmp import soap
from acs_emulator.cwmp.documents import (
    StoreError,
    check_parameter,
    get_parameter,
    now_iso,
    set_parameter,
    set_values,
)
from acs_emulator.cwmp.store import DeviceStore

VALUES = [
    soap.ParameterValue("Device.DeviceInfo.SoftwareVersion", "V1", "xsd:string"),
    soap.ParameterValue("Device.Optical.Interface.1.OpticalSignalLevel", "-19500", "xsd:int"),
    soap.ParameterValue("Device.WiFi.SSID.1.", "", "xsd:string"),  # an object node
    soap.ParameterValue("..Device..DeviceInfo.UpTime", "5", ""),  # empty segments, no type
    soap.ParameterValue("Device.DeviceInfo.SoftwareVersion", "V2", "xsd:string"),  # repeated
]


def test_set_values_builds_the_document_set_parameter_builds():
    bulk: dict = {"_id": "d"}
    one_by_one: dict = {"_id": "d"}
    set_values(bulk, VALUES, "2026-01-01T00:00:00.000Z")
    for v in VALUES:
        set_parameter(one_by_one, v.name, v.value, v.type, "2026-01-01T00:00:00.000Z")
    assert bulk == one_by_one
    assert get_parameter(bulk, "Device.DeviceInfo.SoftwareVersion") == "V2"
    assert bulk["Device"]["WiFi"]["SSID"]["1"]["_object"] is True
    assert bulk["Device"]["DeviceInfo"]["UpTime"]["_type"] == "xsd:string"


def test_a_name_checked_once_still_has_its_value_checked_and_bad_names_always_fail():
    check_parameter("Device.DeviceInfo.ProvisioningCode", "x")  # now cached as a good name
    with pytest.raises(StoreError, match="value of at most"):
        check_parameter("Device.DeviceInfo.ProvisioningCode", "x" * 20000)
    for _ in range(2):  # a refused name is refused every time (never cached)
        with pytest.raises(StoreError, match="may not start with '_'"):
            check_parameter("Device._secret")
    with pytest.raises(StoreError, match="non-empty string"):
        check_parameter(["not", "a", "name"])  # type: ignore[arg-type]


def test_now_iso_is_the_utc_clock_in_milliseconds():
    before = datetime.now(UTC)
    stamps = [now_iso() for _ in range(3)]
    time.sleep(0.002)
    later = now_iso()
    after = datetime.now(UTC)
    for s in [*stamps, later]:
        assert len(s) == 24 and s.endswith("Z")
        at = datetime.fromisoformat(s[:-1]).replace(tzinfo=UTC)
        # Truncated to the millisecond, never ahead of the clock.
        assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= at <= after
    assert stamps == sorted(stamps) and later > stamps[-1]


@pytest.mark.parametrize(
    ("body", "may_hold_dtd"),
    [
        (b'<?xml version="1.0" encoding="UTF-8"?><a>Hello!</a>', False),  # "!" alone
        (b"<?xml version='1.0'?><a/>", False),
        (b'<?xml version="1.0" encoding="UTF-8" ?><a/>', False),  # uncommon: read in full
        (b"<a><!-- c --></a>", True),
        (b'<?xml version="1.0" encoding="UTF-7"?><a/>', True),
        (b'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', True),
        (b"\xef\xbb\xbf<?xml version='1.0' encoding='utf-16'?><a/>", True),
    ],
)
def test_dtd_screen_with_common_declarations(body, may_hold_dtd):
    assert soap._may_hold_dtd(body) is may_hold_dtd


def test_flush_keeps_a_document_it_cannot_serialise_and_writes_the_others(tmp_path):
    store = DeviceStore(tmp_path / "acs.sqlite")
    cyclic: dict = {"_id": "bad"}
    cyclic["Device"] = {"loop": cyclic}  # cannot be JSON: no cycle check, RecursionError
    store.save_device(cyclic, defer=True)
    store.save_device({"_id": "good", "_tags": []}, defer=True)
    store.flush()
    assert store.write_errors == 1
    assert store.get_device("bad") is cyclic  # kept in memory
    del cyclic["Device"]
    store.close()
    reopened = DeviceStore(tmp_path / "acs.sqlite")
    assert reopened.get_device("good") == {"_id": "good", "_tags": []}
    assert reopened.get_device("bad") is None
    reopened.close()


@pytest.mark.parametrize("root", ["Device", "InternetGatewayDevice"])
def test_preset_tasks_take_a_hostile_serial_verbatim(root):
    # The serial number comes from the CPE: a quote or backslash in it must end up in
    # the values, never change the task (it was once pasted into the task's JSON text).
    from acs_emulator.cwmp.presets import render_task, zero_touch_preset

    serial = 'S1", "xsd:string"], ["{root}.ManagementServer.URL", "http://evil/\\'
    (task,) = zero_touch_preset().tasks
    rendered = render_task(task, root, serial, "OUI-S1")
    values = rendered["parameterValues"]
    assert [v[1] for v in values] == [f"{serial}@isp", f"NET_{serial}"]
    assert [v[2] for v in values] == ["xsd:string", "xsd:string"]
    assert all(v[0].startswith(f"{root}.") for v in values)
    assert task["parameterValues"][0][0] == "{root}.PPP.Interface.1.Username"  # untouched
    if root == "InternetGatewayDevice":
        assert values[0][0].endswith("WANPPPConnection.1.Username")
