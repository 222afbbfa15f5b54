"""Safe file download: temporary file, progress bar, size/checksum checks, atomic rename."""

import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from typing import Optional

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

_CHUNK_SIZE = 1 << 16
# Transient failures (timeouts, dropped connections, HTTP 408/429/5xx) are retried
# this many times in all, waiting _RETRY_DELAY seconds, doubled after each failure.
_ATTEMPTS = 3
_RETRY_DELAY = 0.5
_TRANSIENT_HTTP_CODES = frozenset({408, 429, 500, 502, 503, 504})


class DownloadError(OSError):
    """A download failed or gave a file of the wrong size or checksum."""


class _TransientDownloadError(DownloadError):
    """A failure that may go away when the download is tried again."""


def _download(
    url: str,
    save_path: str,
    filename: str,
    sha256: Optional[str] = None,
    md5: Optional[str] = None,
    progress_bar: Optional[bool] = None,
    timeout: float = 60.0,
) -> str:
    """Download ``url`` to ``save_path/filename`` unless that file already exists.

    The data goes to a temporary file in the same folder, renamed only once it is
    complete: its size matches the server's Content-Length and, when given, its
    SHA-256 / MD5 digests match. On failure the temporary file is removed.
    Transient failures (timeouts, dropped connections, HTTP 408/429/5xx) are
    retried; errors name the URL and the path where the file can be put by hand.

    Parameters
    ----------
    url
        Address to fetch (``http(s)://``, ``ftp://`` or ``file://``).
    save_path
        Folder to write into (created if needed).
    filename
        Name of the file in ``save_path``.
    sha256, md5
        Expected hexadecimal digests; checked when given.
    progress_bar
        Show a tqdm progress bar: True, False, or None (only on a terminal).
    timeout
        Seconds to wait for the connection and for each read.

    Returns
    -------
    The path of the file.

    Raises
    ------
    DownloadError
        If the transfer fails or the file has the wrong size or digest.
    """
    path = os.path.join(save_path, filename)
    if os.path.exists(path):
        logger.info("File %s already downloaded", path)
        return path
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    logger.info("Downloading file at %s", path)
    manual = (
        f" To work offline, download {url} by hand and save it as "
        f"{os.path.abspath(path)}."
    )
    attempt, delay = 1, _RETRY_DELAY
    while True:
        try:
            _fetch_to(url, path, folder, sha256, md5, progress_bar, timeout)
            return path
        except _TransientDownloadError as error:
            if attempt >= _ATTEMPTS:
                raise DownloadError(
                    f"{error} (gave up after {attempt} attempts).{manual}"
                ) from error
            attempt += 1
            logger.warning(
                "%s; retrying in %.1f s (attempt %d of %d).",
                error,
                delay,
                attempt,
                _ATTEMPTS,
            )
            time.sleep(delay)
            delay *= 2
        except DownloadError as error:
            raise DownloadError(f"{error}{manual}") from error


def _fetch_to(
    url: str,
    path: str,
    folder: str,
    sha256: Optional[str],
    md5: Optional[str],
    progress_bar: Optional[bool],
    timeout: float,
) -> None:
    """One download attempt into a temporary file, renamed to ``path`` if valid."""
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".part", dir=folder
    )
    try:
        with os.fdopen(handle, "wb") as out:
            digests = _fetch(url, out, os.path.basename(path), progress_bar, timeout)
        for name, expected in (("sha256", sha256), ("md5", md5)):
            if expected is not None and digests[name] != expected.lower():
                raise DownloadError(
                    f"Checksum mismatch for {url}: expected {name} {expected}, got "
                    f"{digests[name]}. The file may be corrupted or changed upstream; "
                    "try again or check the URL."
                )
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _fetch(
    url: str, out, label: str, progress_bar: Optional[bool], timeout: float
) -> dict:
    """Stream ``url`` into ``out``; return its hex digests."""
    hashers = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()  # the error holds the response and its connection
        kind = (
            _TransientDownloadError
            if error.code in _TRANSIENT_HTTP_CODES
            else DownloadError
        )
        raise kind(f"Could not download {url}: {error}") from error
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        missing = isinstance(getattr(error, "reason", error), FileNotFoundError)
        kind = DownloadError if missing else _TransientDownloadError
        raise kind(f"Could not download {url}: {error}") from error
    with response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None
        received = 0
        with tqdm(
            total=expected,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=label,
            disable=None if progress_bar is None else not progress_bar,
        ) as bar:
            while True:
                try:
                    block = response.read(_CHUNK_SIZE)
                except (http.client.HTTPException, OSError) as error:
                    raise _TransientDownloadError(
                        f"Download of {url} interrupted after {received} bytes: "
                        f"{error!r}"
                    ) from error
                if not block:
                    break
                out.write(block)
                for hasher in hashers.values():
                    hasher.update(block)
                received += len(block)
                bar.update(len(block))
    if expected is not None and received != expected:
        raise _TransientDownloadError(
            f"Incomplete download of {url}: received {received} of {expected} bytes. "
            "Try again; nothing was saved."
        )
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}
