"""HTTP transfers for `ytlabel data download`: bounded GETs with retries, a ranged resume after a dropped
connection, md5 verification before a file takes its final name, and a progress bar.

Standard library only (urllib): no dependency for what one GET per file needs.
"""

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any, Self

from ytlabel.errors import DataError, YtlabelError

log = logging.getLogger("ytlabel.data.download")

MAX_FILE_BYTES = 16 << 30  # the largest official frame-level shard is under 1 GB
CHUNK = 1 << 16  # read size; every byte received before a drop is kept
TIMEOUT_S = 60.0


class DownloadError(YtlabelError):
    """A file could not be downloaded and verified after every retry (named, with the reason)."""


class _Permanent(Exception):
    """A failure a retry cannot mend (404, a body too large)."""


def md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_small(url: str, limit: int, retries: int, backoff_s: float) -> bytes:
    """A small body (a download plan), at most `limit` bytes, with retries on 5xx and connection errors."""
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                body = response.read(limit + 1)
            if len(body) > limit:
                raise DataError(f"the plan is over {limit} bytes", source=url)
            return body
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == retries:
                raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from error
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            if attempt == retries:
                raise DownloadError(f"{url}: {getattr(error, 'reason', error)}") from error
        time.sleep(backoff_s * 2**attempt)
    raise AssertionError("unreachable")


def fetch_verified(url: str, path: str, digest: str, retries: int, backoff_s: float, bar: "ProgressBar") -> int:
    """Downloads `url` to `path` through `<path>.part`, resuming after a dropped connection; returns the size.

    The partial file survives a failed run (the next run resumes it); it becomes `path` only after its md5
    matched. A wrong md5 starts the file again (the bytes are not trusted), and counts as an attempt.
    """
    partial = path + ".part"
    why = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            _get_into(url, partial, bar)
        except _Permanent as error:
            raise DownloadError(str(error)) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            why = f"{url}: {getattr(error, 'reason', None) or error.__class__.__name__ + ' ' + str(error)}"
            log.warning("%s (attempt %d of %d; will resume)", why, attempt + 1, retries + 1)
            continue
        got = md5(partial)
        if got == digest:
            os.replace(partial, path)
            return os.path.getsize(path)
        os.remove(partial)
        why = f"{url}: md5 {got}, the plan says {digest}"
        log.warning("%s (attempt %d of %d; starting the file again)", why, attempt + 1, retries + 1)
    raise DownloadError(f"{why} after {retries + 1} attempts")


def _get_into(url: str, partial: str, bar: "ProgressBar") -> None:
    """One GET, appended to `partial` from the byte it holds (Range), or written afresh if the server
    ignores the range. Raises _Permanent for what a retry cannot mend."""
    have = os.path.getsize(partial) if os.path.exists(partial) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the partial already holds every byte: let the md5 decide
            return
        if error.code < 500:
            raise _Permanent(f"{url}: HTTP {error.code} {error.reason}") from None
        raise
    with response:
        resumed = have and response.status == 206
        length = response.headers.get("Content-Length")
        total = (have if resumed else 0) + (int(length) if length and length.isdigit() else 0)
        if total > MAX_FILE_BYTES:
            raise _Permanent(f"{url}: {total} bytes is over the {MAX_FILE_BYTES}-byte bound for one shard")
        written = have if resumed else 0
        with open(partial, "ab" if resumed else "wb") as file:
            for block in iter(lambda: response.read(CHUNK), b""):
                written += len(block)
                if written > MAX_FILE_BYTES:
                    raise _Permanent(f"{url}: over the {MAX_FILE_BYTES}-byte bound for one shard")
                file.write(block)
                bar.bytes(len(block))
    if length and written < total:  # read(amt) returns b"" at a dropped connection instead of raising
        raise ConnectionError(f"the connection closed at byte {written} of {total}")


class ProgressBar:
    """A rich progress bar on a terminal (files and bytes); one log line per file otherwise."""

    def __init__(self, files: int, enabled: bool):
        self.files, self.enabled = files, enabled
        self._progress: Any = None  # a rich Progress, imported only when a bar is shown

    def __enter__(self) -> Self:
        if self.enabled and self.files:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._progress = Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self._progress.__enter__()
            self._task = self._progress.add_task("downloading", total=self.files)
            self._bytes = 0
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def bytes(self, count: int) -> None:
        if self._progress is not None:
            self._bytes += count
            self._progress.update(self._task, description=f"downloading ({self._bytes / 1e6:.0f} MB)")

    def advance(self, name: str, outcome: str) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)
        else:
            log.info("%s: %s", name, outcome)
