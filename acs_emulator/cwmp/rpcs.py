"""How each NBI task becomes CWMP RPCs, and where their results are stored."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from acs_emulator.cwmp import soap
from acs_emulator.cwmp.documents import now_iso, set_parameter
from acs_emulator.cwmp.store import DeviceStore

__all__ = ["task_steps", "root_of"]

_GPV_CHUNK = 100


def root_of(doc: dict[str, Any]) -> str:
    """Data-model root of a device document (``Device`` or ``InternetGatewayDevice``)."""
    return "InternetGatewayDevice" if "InternetGatewayDevice" in doc else "Device"


def task_steps(
    store: DeviceStore, device_id: str, task: dict[str, Any], file_server_url: str = ""
) -> Generator[str, soap.CwmpMessage, None]:
    """The RPCs of one task, as a generator that receives each CPE response.

    Parameters
    ----------
    store : DeviceStore
        Where results (values, names, instances) are written.
    device_id : str
        The device in session.
    task : dict
        NBI task document.
    file_server_url : str
        Base URL for a download task's ``fileName``.

    Raises
    ------
    ValueError
        For an unknown task name or a response of the wrong kind.
    """
    name = task.get("name")
    doc = store.get_device(device_id) or {"_id": device_id}
    if name == "getParameterValues":
        names = [n for n in task.get("parameterNames", []) if n]
        for i in range(0, len(names), _GPV_CHUNK):
            resp = yield soap.rpc_xml(
                "GetParameterValues", raw=soap.names_xml(names[i : i + _GPV_CHUNK])
            )
            _store_values(store, device_id, resp)
    elif name == "refreshObject":
        obj = task.get("objectName") or root_of(doc) + "."
        if obj and not obj.endswith("."):
            obj += "."
        resp = yield soap.rpc_xml("GetParameterNames", {"ParameterPath": obj, "NextLevel": False})
        leaves = _store_names(store, device_id, resp)
        for i in range(0, len(leaves), _GPV_CHUNK):
            resp = yield soap.rpc_xml(
                "GetParameterValues", raw=soap.names_xml(leaves[i : i + _GPV_CHUNK])
            )
            _store_values(store, device_id, resp)
    elif name == "setParameterValues":
        values = [_typed(v) for v in task.get("parameterValues", [])]
        # "auto" (a provision's value for a parameter not known when it was planned):
        # the type the device has reported since, else one inferred from the value.
        values = [
            (n, v, _reported_type(doc, n, v) if t in ("auto", "xsd:auto") else t)
            for n, v, t in values
        ]
        if not values:
            raise ValueError("setParameterValues: expected parameterValues, got none")
        yield soap.rpc_xml(
            "SetParameterValues",
            raw=soap.values_xml(values) + f"<ParameterKey>{task['_id'][-8:]}</ParameterKey>",
        )
        ts = now_iso()
        d = store.get_device(device_id)
        if d is not None:
            for n, v, t in values:
                set_parameter(d, n, v, t, ts)
            store.save_device(d, defer=True)
    elif name in ("addObject", "deleteObject"):
        obj = task["objectName"]
        obj = obj if obj.endswith(".") else obj + "."
        rpc = "AddObject" if name == "addObject" else "DeleteObject"
        resp = yield soap.rpc_xml(rpc, {"ObjectName": obj, "ParameterKey": task["_id"][-8:]})
        d = store.get_device(device_id)
        if d is not None:
            if name == "addObject":
                num = soap.text(resp.body, "InstanceNumber")
                set_parameter(d, f"{obj}{num}.")
            else:
                store.delete_subtree(device_id, obj)
            store.save_device(d, defer=True)
    elif name == "reboot":
        yield soap.rpc_xml("Reboot", {"CommandKey": task["_id"]})
    elif name == "factoryReset":
        yield soap.rpc_xml("FactoryReset")
    elif name == "download":
        url = task.get("url") or file_server_url + task.get("fileName", "")
        resp = yield soap.rpc_xml(
            "Download",
            {
                "CommandKey": task["_id"],
                "FileType": task.get("fileType", "1 Firmware Upgrade Image"),
                "URL": url,
                "Username": "",
                "Password": "",
                "FileSize": int(task.get("fileSize", 0)),
                "TargetFileName": task.get("targetFileName", task.get("fileName", "")),
                "DelaySeconds": 0,
                "SuccessURL": "",
                "FailureURL": "",
            },
        )
        if soap.text(resp.body, "Status", "0") == "1":
            task["_inTransfer"] = True  # done when TransferComplete arrives
    else:
        raise ValueError(f"task {task.get('_id')}: unknown task name {name!r}")


def _store_values(store: DeviceStore, device_id: str, resp: soap.CwmpMessage) -> None:
    if resp.name != "GetParameterValuesResponse":
        raise ValueError(f"expected GetParameterValuesResponse, got {resp.name}")
    d = store.get_device(device_id)
    if d is None:
        return
    ts = now_iso()
    for p in soap.parse_parameter_values(soap.child(resp.body, "ParameterList")):
        set_parameter(d, p.name, p.value, p.type, ts)
    store.save_device(d, defer=True)


def _store_names(store: DeviceStore, device_id: str, resp: soap.CwmpMessage) -> list[str]:
    if resp.name != "GetParameterNamesResponse":
        raise ValueError(f"expected GetParameterNamesResponse, got {resp.name}")
    d = store.get_device(device_id)
    leaves = []
    ts = now_iso()
    for pis in soap.children(soap.child(resp.body, "ParameterList"), "ParameterInfoStruct"):
        n = soap.text(pis, "Name")
        writable = soap.text(pis, "Writable") in ("1", "true")
        if d is not None and n:
            set_parameter(d, n, ts=ts, writable=writable)
        if n and not n.endswith("."):
            leaves.append(n)
    if d is not None:
        store.save_device(d, defer=True)
    return leaves


def _reported_type(doc: dict[str, Any], name: str, value: str) -> str:
    node: Any = doc
    for part in name.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and node.get("_type"):
        return str(node["_type"])
    if value.lstrip("-").isdigit():
        return "xsd:int"
    return "xsd:boolean" if value.lower() in ("true", "false") else "xsd:string"


def _typed(v: Any) -> tuple[str, str, str]:
    if isinstance(v, dict):
        return v["name"], str(v["value"]), v.get("type", "xsd:string")
    name, value = v[0], v[1]
    vtype = (
        v[2]
        if len(v) > 2
        else (
            "xsd:boolean"
            if isinstance(value, bool)
            else "xsd:int"
            if isinstance(value, int)
            else "xsd:string"
        )
    )
    if isinstance(value, bool):
        value = "1" if value else "0"
    return name, str(value), vtype
