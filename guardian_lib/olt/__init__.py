"""Managing OLTs over their command line: autofind, authorize, WAN, reboot, enable/disable.

Vendor knowledge lives in YAML CLI profiles (``guardian_lib/olt/profiles/``); the driver
reads them. See ``docs/olt.md``.

Typical use::

    from guardian_lib.olt import AuthorizeRequest, OltDriver, load_cli_inventory

    inv = load_cli_inventory("olt-cli.yaml")
    async with OltDriver(inv.target("OLT-001"), inv.profile_of("OLT-001")) as olt:
        waiting = await olt.autofind()
        await olt.authorize(AuthorizeRequest(1, 0, waiting[0].serial, vlan=100))
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "AuthorizeRequest": "guardian_lib.olt.driver",
        "AuthorizeResult": "guardian_lib.olt.driver",
        "AutofindOnu": "guardian_lib.olt.driver",
        "OltDriver": "guardian_lib.olt.driver",
        "OnuLocation": "guardian_lib.olt.driver",
        "normalize_serial": "guardian_lib.olt.driver",
        "plan": "guardian_lib.olt.driver",
        "CliProfile": "guardian_lib.olt.profiles",
        "load_cli_profile": "guardian_lib.olt.profiles",
        "load_cli_profiles": "guardian_lib.olt.profiles",
        "CliInventory": "guardian_lib.olt.inventory",
        "load_cli_inventory": "guardian_lib.olt.inventory",
        "pppoe_account": "guardian_lib.olt.inventory",
        "OltError": "guardian_lib.olt.session",
        "OltAuthError": "guardian_lib.olt.session",
        "OltCommandError": "guardian_lib.olt.session",
        "OltConnectError": "guardian_lib.olt.session",
        "OltTimeoutError": "guardian_lib.olt.session",
        "SshTarget": "guardian_lib.olt.session",
    },
)
