"""NBI routes for presets, provisions, virtual parameters, files and ``/ping``.

GenieACS's calls and status codes (``lib/nbi.ts``), with what this ACS accepts:

* ``PUT /presets/<name>`` (JSON preset, see :func:`~acs_emulator.cwmp.presets.
  preset_from_genieacs`) → 200; ``DELETE`` → 200; ``GET /presets/?query=`` lists;
* ``PUT /provisions/<name>`` (script text of the safe subset,
  :mod:`acs_emulator.cwmp.provisions`) → 200, or 400 naming line and column;
* ``PUT /virtual_parameters/<name>`` → 200. GenieACS takes a script here; this ACS
  takes the declarative JSON of :mod:`acs_emulator.cwmp.virtual` (400 otherwise);
* ``PUT /files/<name>`` (body = content, headers ``fileType``, ``oui``,
  ``productClass``, ``version``) → 201; ``DELETE /files/<name>`` → 200 or 404;
  ``GET /files/?query=`` lists the metadata (with ``length`` and ``sha256``);
* ``GET /ping/<host>`` runs the system ``ping`` (no shell; the host must match
  GenieACS's pattern and may not start with ``-``) → 200 with its output, 404 when the
  host does not answer, 500 when ``ping`` cannot run, 503 while
  :data:`MAX_CONCURRENT_PINGS` pings already run.

Every other method on these paths answers 405 with ``Allow``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence

from aiohttp import web

from acs_emulator.cwmp.files import FileError
from acs_emulator.cwmp.presets import PresetError, preset_from_genieacs
from acs_emulator.cwmp.provisions import MAX_SCRIPT_CHARS, ProvisionError, parse_script
from acs_emulator.cwmp.server import Acs
from acs_emulator.cwmp.virtual import VirtualParameterError, check_virtual_parameter

__all__ = ["MAX_CONCURRENT_PINGS", "PING_COMMAND", "add_admin_routes"]

#: Command (argv prefix) that pings; the host is appended.
PING_COMMAND: tuple[str, ...] = ("ping", "-c", "3", "-W", "1")
_PING_HOST = re.compile(r"^[a-zA-Z0-9_.:][a-zA-Z0-9\-_.:]{0,252}$")
_NAME = re.compile(r"^[a-zA-Z0-9\-_%]{1,128}$")
_MAX_BODY = 256 * 1024
#: ``ping`` processes running at once; more requests → 503 (each holds a process for up
#: to ``ping_timeout_s``, and a loop of requests would fork without bound). [-]
MAX_CONCURRENT_PINGS = 4


def _text(status: int, text: str = "", **headers: str) -> web.Response:
    return web.Response(status=status, text=text, headers=headers or None)


class _Admin:
    def __init__(self, acs: Acs, ping_command: Sequence[str], ping_timeout_s: float) -> None:
        self.acs = acs
        self.store = acs.store
        self.ping_command = tuple(ping_command)
        self.ping_timeout_s = ping_timeout_s
        self.pings_running = 0  # one event loop: a plain counter is enough

    async def _body(self, request: web.Request) -> bytes:
        if (request.content_length or 0) > _MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=_MAX_BODY, actual_size=0)
        return await request.read()

    def _name(self, request: web.Request) -> str | None:
        name = request.match_info["name"]
        return name if _NAME.fullmatch(name) and "." not in name else None

    async def preset(self, request: web.Request) -> web.Response:
        name = self._name(request)
        if name is None:
            return _text(400, "preset name: expected letters, digits, '-', '_' (no '.')")
        if request.method == "DELETE":
            self.store.delete_admin("presets", name)
            self.acs.invalidate()
            return _text(200)
        try:
            body = json.loads(await self._body(request))
            preset_from_genieacs(name, body)  # refuse what would not apply
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _text(400, f"preset {name}: expected JSON, {exc}")
        except (PresetError, KeyError, TypeError, ValueError) as exc:
            return _text(400, str(exc))
        self.store.put_admin("presets", name, body)
        self.acs.invalidate()
        return _text(200)

    async def provision(self, request: web.Request) -> web.Response:
        name = self._name(request)
        if name is None:
            return _text(400, "provision name: expected letters, digits, '-', '_'")
        if request.method == "DELETE":
            self.store.delete_admin("provisions", name)
            return _text(200)
        body = await self._body(request)
        try:
            script = body.decode()
            if len(script) > MAX_SCRIPT_CHARS:
                raise ProvisionError(f"provision script: at most {MAX_SCRIPT_CHARS} characters")
            # Parsed with placeholder arguments: syntax and shape are checked now.
            parse_script(script, [""] * 16)
        except UnicodeDecodeError:
            return _text(400, f"provision {name}: expected UTF-8 text")
        except ProvisionError as exc:
            return _text(400, f"ProvisionError: {exc}")
        self.store.put_admin("provisions", name, {"script": script})
        return _text(200)

    async def virtual_parameter(self, request: web.Request) -> web.Response:
        name = self._name(request)
        if name is None:
            return _text(400, "virtual parameter name: expected letters, digits, '-', '_'")
        if request.method == "DELETE":
            self.store.delete_admin("virtual_parameters", name)
            self.acs.invalidate()
            return _text(200)
        try:
            spec = json.loads(await self._body(request))
            check_virtual_parameter(name, spec)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _text(
                400,
                f"virtual parameter {name}: expected a JSON definition "
                f'({{"sources": [{{"path": ...}}]}}; scripts are not run), {exc}',
            )
        except VirtualParameterError as exc:
            return _text(400, str(exc))
        self.store.put_admin("virtual_parameters", name, {"definition": spec})
        self.acs.invalidate()
        return _text(200)

    async def file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if request.method == "DELETE":
            return _text(200 if self.acs.files.delete(name) else 404)
        try:
            await self.acs.files.upload(name, request)
        except FileError as exc:
            return _text(413 if "at most" in str(exc) else 400, str(exc), Connection="close")
        return _text(201)

    async def ping(self, request: web.Request) -> web.Response:
        host = request.match_info["host"]
        if not _PING_HOST.fullmatch(host):
            return _text(404)
        if self.pings_running >= MAX_CONCURRENT_PINGS:
            return _text(
                503, f"at most {MAX_CONCURRENT_PINGS} pings at once", **{"Retry-After": "1"}
            )
        self.pings_running += 1
        try:
            return await self._ping(host)
        finally:
            self.pings_running -= 1

    async def _ping(self, host: str) -> web.Response:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.ping_command,
                host,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            return _text(500, f"{type(exc).__name__}: {exc}", Connection="close")
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.ping_timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return _text(404, f"ping {host}: no answer within {self.ping_timeout_s:g} s")
        text = out.decode(errors="replace")[:8192]
        if proc.returncode != 0:
            return _text(404, text, **{"Cache-Control": "no-cache"})
        return web.Response(
            status=200, text=text, content_type="text/plain", headers={"Cache-Control": "no-cache"}
        )


def add_admin_routes(
    app: web.Application,
    acs: Acs,
    *,
    ping_command: Sequence[str] = PING_COMMAND,
    ping_timeout_s: float = 10.0,
) -> None:
    """Register the routes of this module on the NBI application ``app``."""
    admin = _Admin(acs, ping_command, ping_timeout_s)
    r = app.router
    for coll, handler in (
        ("presets", admin.preset),
        ("provisions", admin.provision),
        ("virtual_parameters", admin.virtual_parameter),
        ("files", admin.file),
    ):
        for method in ("PUT", "DELETE"):
            r.add_route(method, f"/{coll}/{{name}}", handler)
            r.add_route(method, f"/{coll}/{{name}}/", handler)
    r.add_get("/ping/{host}", admin.ping)
    r.add_get("/ping/{host}/", admin.ping)
