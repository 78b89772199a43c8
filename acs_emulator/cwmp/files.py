"""Files for CPEs: upload through the NBI, firmware hosting for ``Download``.

``PUT /files/<name>`` (GenieACS's NBI call, metadata in the ``fileType``, ``oui``,
``productClass`` and ``version`` headers) streams the body to
``<file_dir>/<sha256>`` while hashing it; the metadata document (GenieACS's
``{"_id", "filename", "length", "uploadDate", "metadata"}`` plus ``sha256``) goes to
the store's ``files`` collection. The file server (:func:`file_server_app`, GenieACS's
``genieacs-fs`` on port 7567) serves ``GET|HEAD /<name>`` to CPEs with
``Content-Length`` and the SHA-256 in ``Digest: sha-256=<base64>``
(RFC 3230) so a CPE can check what it downloaded. A ``download`` task naming an
uploaded file gets its URL, ``FileSize`` and ``FileType`` from here.

Names are hostile input: only ``[A-Za-z0-9._-]``, 1–128 characters, not starting
with ``.``; the size is capped (``max_file_bytes``); a partial upload leaves nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from acs_emulator.cwmp.documents import now_iso
from acs_emulator.cwmp.store import DeviceStore
from guardian_lib.errors import GuardianError

__all__ = ["FileError", "FileStore", "check_file_name", "file_server_app"]

_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
_META_HEADERS = {"fileType": "filetype", "oui": "oui", "productClass": "productclass"}


class FileError(GuardianError, ValueError):
    """A file name or upload refused (says why)."""


def check_file_name(name: str) -> str:
    """Return ``name`` if it is a safe file name, else raise :class:`FileError`."""
    if not _NAME.fullmatch(name or ""):
        raise FileError(
            f"file name: expected 1-128 characters of A-Z a-z 0-9 . _ - (not starting "
            f"with '.'), got {name[:60]!r}"
        )
    return name


class FileStore:
    """Uploaded files on disk, their metadata in a :class:`DeviceStore`.

    Parameters
    ----------
    store : DeviceStore
        Holds the ``files`` metadata collection.
    directory : str or Path, optional
        Where contents live (created 0700); a temporary folder when ``None``.
    max_bytes : int
        Largest accepted file. [bytes]
    """

    def __init__(self, store: DeviceStore, directory: str | Path | None, max_bytes: int) -> None:
        self.store = store
        self._tmp = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="acs-files-")
            directory = self._tmp.name
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.max_bytes = max_bytes

    def meta(self, name: str) -> dict[str, Any] | None:
        """Metadata document of ``name`` or ``None``."""
        return self.store.admin["files"].get(name)

    def path_of(self, name: str) -> Path | None:
        """Content path of ``name`` (``None`` when unknown or missing on disk)."""
        meta = self.meta(name)
        if meta is None:
            return None
        path = self.dir / meta["sha256"]
        return path if path.is_file() else None

    async def upload(self, name: str, request: web.Request) -> dict[str, Any]:
        """Stream the request body to disk; returns the metadata document.

        Raises
        ------
        FileError
            Bad name, or a body larger than ``max_bytes`` (nothing is kept).
        """
        check_file_name(name)
        if (request.content_length or 0) > self.max_bytes:
            raise FileError(f"file {name}: expected at most {self.max_bytes} bytes")
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FileError(f"file {name}: expected at most {self.max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            os.replace(tmp, self.dir / sha)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        meta = {
            "filename": name,
            "length": size,
            "uploadDate": now_iso(),
            "sha256": sha,
            "metadata": {
                key: request.headers.get(header, "") for key, header in _META_HEADERS.items()
            }
            | {"version": request.headers.get("version", "")},
        }
        old = self.meta(name)
        self.store.put_admin("files", name, meta)
        if old is not None and old["sha256"] != sha:
            self._drop_content(old["sha256"])
        return self.meta(name) or meta

    def delete(self, name: str) -> bool:
        """Delete a file; whether it existed."""
        meta = self.meta(name)
        if meta is None:
            return False
        self.store.delete_admin("files", name)
        self._drop_content(meta["sha256"])
        return True

    def _drop_content(self, sha: str) -> None:
        if not any(m["sha256"] == sha for m in self.store.admin["files"].values()):
            (self.dir / sha).unlink(missing_ok=True)

    def download_args(self, name: str, base_url: str) -> dict[str, Any] | None:
        """``URL``, ``FileSize`` and ``FileType`` of a Download of ``name`` (or ``None``)."""
        meta = self.meta(name)
        if meta is None:
            return None
        return {
            "url": base_url + quote(name),
            "fileSize": meta["length"],
            "fileType": meta["metadata"].get("fileType") or "1 Firmware Upgrade Image",
        }

    def close(self) -> None:
        """Remove the temporary folder, if one was made."""
        if self._tmp is not None:
            self._tmp.cleanup()


def file_server_app(files: FileStore) -> web.Application:
    """The CPE-facing file server: ``GET|HEAD /<name>`` (404 for anything unknown)."""

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        try:
            check_file_name(name)
        except FileError:
            return web.Response(status=404)
        path = files.path_of(name)
        meta = files.meta(name)
        if path is None or meta is None:
            return web.Response(status=404)
        b64 = base64.b64encode(bytes.fromhex(meta["sha256"])).decode()
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "application/octet-stream",
                "Digest": f"sha-256={b64}",
                "Repr-Digest": f"sha-256=:{b64}:",
            },
        )

    app = web.Application()
    app.router.add_get("/{name}", serve)  # also answers HEAD
    return app
