"""Security audit of the NBI's ``/ping``: no argument injection, bounded processes."""

from __future__ import annotations

import asyncio
import sys

import aiohttp

from acs_emulator.cwmp.nbi_admin import MAX_CONCURRENT_PINGS
from acs_emulator.cwmp.testing import run, running_acs

# a "ping" that answers after 2 s and echoes its arguments
SLOW = (sys.executable, "-c", "import sys, time; time.sleep(2); print('argv', sys.argv[1:])")


def test_pings_at_once_are_capped_and_hosts_cannot_become_options():
    async def go():
        async with running_acs(nbi_options={"ping_command": SLOW}) as svc:
            async with aiohttp.ClientSession() as http:

                async def ping(host: str) -> tuple[int, str]:
                    async with http.get(f"{svc.nbi_url}/ping/{host}") as r:
                        return r.status, await r.text()

                n = MAX_CONCURRENT_PINGS + 2
                answers = await asyncio.gather(*(ping(f"10.0.0.{i}") for i in range(n)))
                codes = sorted(code for code, _ in answers)
                assert codes == [200] * MAX_CONCURRENT_PINGS + [503] * 2
                # "%0A": re.match's "$" accepted a trailing newline
                for bad in ("-fc100000", "--help", "a b", "a;id", "`id`", "a%0a-c1", "10.0.0.1%0A"):
                    assert (await ping(bad))[0] == 404
                status, text = await ping("host-name.example")  # '-' inside is a host
                assert status == 200 and "['host-name.example']" in text

    run(go())


def test_names_with_a_trailing_newline_are_refused():
    from acs_emulator.cwmp.files import FileError, check_file_name

    for name in ("fw.bin\n", "fw.bin\r"):
        try:
            check_file_name(name)
        except FileError:
            continue
        raise AssertionError(f"{name!r} accepted")
