"""``guardian acs firmware …``: upload images to an ACS and run firmware campaigns.

Works against any GenieACS-compatible NBI (this emulated ACS or a real GenieACS):
``upload`` is ``PUT /files/<name>`` with the metadata headers, ``list`` is
``GET /files/``, ``campaign`` runs :class:`guardian_lib.acs.FirmwareCampaign`
(canaries first, batches, rollback on failure). The NBI token comes from
``$GUARDIAN_NBI_TOKEN`` (never from the command line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["firmware_app"]

firmware_app = typer.Typer(
    help="Firmware images on the ACS's file server and campaigns.", no_args_is_help=True
)
NbiUrl = Annotated[str, typer.Option(help="GenieACS-compatible NBI base URL.")]


@firmware_app.command("upload")
def upload_command(
    image: Annotated[Path, typer.Argument(help="Firmware image file.", exists=True)],
    version: Annotated[str, typer.Option(help="Firmware version the image installs.")],
    product_class: Annotated[str, typer.Option(help="Device model (ProductClass).")] = "",
    oui: Annotated[str, typer.Option(help="Vendor OUI.")] = "",
    name: Annotated[str, typer.Option(help="Name on the ACS (default: the file's).")] = "",
    nbi_url: NbiUrl = "http://127.0.0.1:7557",
) -> None:
    """Upload IMAGE (``PUT /files/<name>``); prints its size and SHA-256."""
    import hashlib

    from guardian_lib.acs import NbiClient

    data = image.read_bytes()
    file_name = name or image.name
    with NbiClient(nbi_url) as client:
        client.upload_file(file_name, data, oui=oui, product_class=product_class, version=version)
    typer.echo(
        json.dumps(
            {
                "file": file_name,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "version": version,
            }
        )
    )


@firmware_app.command("list")
def list_command(nbi_url: NbiUrl = "http://127.0.0.1:7557") -> None:
    """List the files on the ACS (name, bytes, version, model, SHA-256 when known)."""
    from guardian_lib.acs import NbiClient

    with NbiClient(nbi_url) as client:
        for f in client.files():
            meta = f.get("metadata") or {}
            row = {
                "file": f.get("_id"),
                "bytes": f.get("length"),
                "version": meta.get("version"),
                "productClass": meta.get("productClass"),
                "sha256": f.get("sha256"),
            }
            typer.echo(json.dumps(row))


@firmware_app.command("campaign")
def campaign_command(
    name: Annotated[str, typer.Option(help="Campaign name (part of every idempotency key).")],
    file: Annotated[str, typer.Option(help="Image name on the ACS (see `list`).")],
    target_version: Annotated[str, typer.Option(help="Version the devices must report.")],
    product_class: Annotated[str, typer.Option(help="Target this model.")] = "",
    tag: Annotated[str, typer.Option(help="Target devices with this tag.")] = "",
    canary_share: Annotated[float, typer.Option(help="Share upgraded first. [-]")] = 0.05,
    batch_size: Annotated[int, typer.Option(help="Devices per batch after canaries.")] = 50,
    max_failure_share: Annotated[
        float, typer.Option(help="Failures tolerated per stage before stopping. [-]")
    ] = 0.0,
    rollback_file: Annotated[
        str, typer.Option(help="Image re-installed on failed-stage devices.")
    ] = "",
    wait: Annotated[float, typer.Option(help="How long one stage may take. [s]")] = 600.0,
    poll: Annotated[float, typer.Option(help="ACS polling interval. [s]")] = 5.0,
    seed: Annotated[int, typer.Option(help="Seed of the canary pick.")] = 0,
    nbi_url: NbiUrl = "http://127.0.0.1:7557",
) -> None:
    """Upgrade a model or a tag: canaries, then batches; stop and roll back on failure."""
    from dataclasses import asdict

    from guardian_lib.acs import NbiClient
    from guardian_lib.acs.campaigns import CampaignError, FirmwareCampaign

    if bool(product_class) == bool(tag):
        raise typer.BadParameter("give exactly one of --product-class or --tag")
    with NbiClient(nbi_url) as client:
        known = {f.get("_id") for f in client.files({"_id": file})}
        if file not in known:
            raise typer.BadParameter(f"--file {file}: not on the ACS (upload it first)")
        try:
            report = FirmwareCampaign(
                client,
                name=name,
                file_name=file,
                target_version=target_version,
                product_class=product_class or None,
                tag=tag or None,
                canary_share=canary_share,
                batch_size=batch_size,
                max_failure_share=max_failure_share,
                rollback_file=rollback_file or None,
                wait_s=wait,
                poll_s=poll,
                seed=seed,
            ).run()
        except CampaignError as exc:
            raise typer.BadParameter(str(exc)) from exc
    typer.echo(json.dumps(asdict(report)))
    if report.status == "rolled_back":
        raise typer.Exit(1)
