"""Downloading one file over HTTP(S), verified by its SHA-256 before it is kept.

The file is streamed into a temporary file in the destination's directory
while its digest is computed; only a matching digest renames it into place
(``os.replace``), so an interrupted or corrupted download never leaves a
file under the final name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .._io import atomic_file

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class DownloadError(OSError):
    """The server could not be reached or did not return the file (HTTP error, timeout)."""


def download(url: str, dest: str | os.PathLike, sha256: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` if its SHA-256 digest is ``sha256``.

    The data go to a temporary file in ``dest``'s directory (created if
    needed), are hashed on the way, and the file is renamed to ``dest`` only
    when the digest matches.

    Args:
        url: an ``http://`` or ``https://`` URL.
        dest: the file to create (replaced if it exists).
        sha256: the expected digest, 64 hexadecimal digits.
        timeout: seconds to wait for the server on connecting and on each
            read (default 60).

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        ValueError: bad ``url`` scheme or ``sha256`` string, or a digest
            mismatch (the message names the URL and both digests; nothing is
            left on disk).
        DownloadError: HTTP error (e.g. 404), unreachable server or timeout.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"download: url must start with http:// or https://, got {url!r}")
    expected = sha256.lower() if isinstance(sha256, str) else sha256
    if not isinstance(expected, str) or not _SHA256.fullmatch(expected):
        raise ValueError(f"download: sha256 must be 64 hexadecimal digits, got {sha256!r}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_file(dest) as f:
            digest = hashlib.sha256()
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                f.write(chunk)
            actual = digest.hexdigest()
            if actual != expected:
                raise ValueError(
                    f"download: {url} has SHA-256 {actual}, expected {expected}; the file was not kept"
                )
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"download: {url} failed: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"download: {url} failed: {exc.reason}") from None
    except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
        raise DownloadError(f"download: {url} failed: {type(exc).__name__}: {exc}") from None
    return dest
