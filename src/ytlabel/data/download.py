"""`ytlabel data download`: the official YouTube-8M download, resumable, verified, to a directory or s3://.

The protocol is the one Google's `download.py` follows (`curl data.yt8m.org/download.py | shard=1,100
partition=2/video/train mirror=us python`):

* a *partition* is `VERSION/LEVEL/SPLIT`, e.g. `2/video/train` (level video, frame, video_level or
  frame_level; split train, validate or test);
* its *download plan* is JSON at `http://data.yt8m.org/VERSION/download_plans/LEVEL_SPLIT.json`, of the
  form {"files": {remote file name: md5 hex digest}};
* `shard=i,N` keeps a file when the md5 of its name, as an integer, is i-1 modulo N, so the N shards
  partition the files and anyone computing them gets the same ones;
* files come from a mirror, `http://MIRROR.data.yt8m.org/PARTITION/NAME` (us, eu or asia);
* a remote name ends in two characters from [a-zA-Z0-9] (`trainKH.tfrecord`), saved under their
  index in that alphabet's ordered pairs (`train2265.tfrecord`, 62 x 62 = 3,844 names per split).

What this adds: parallel downloads, retries with a resumed ranged GET after a dropped connection, md5
verification, a progress bar (those four in `transfer.py`), bounded sizes, names from the plan checked
before they touch a path, and output to s3:// through a local staging folder. A file is only ever visible
under its final name once its md5 matched. Rerunning the same command resumes: verified files are skipped,
partial ones continue.
"""

import concurrent.futures
import dataclasses
import hashlib
import itertools
import json
import logging
import os
import re
import string
import sys
import tempfile
import threading
import time

from ytlabel import storage
from ytlabel.data import transfer
from ytlabel.data.transfer import DownloadError  # noqa: F401  raised by download(); callers catch it here
from ytlabel.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PLAN_HOST = "http://data.yt8m.org"
MIRRORS = ("us", "eu", "asia")
LEVELS = ("video", "frame", "video_level", "frame_level")
SPLITS = ("train", "validate", "test")
ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits
INDEX = {"".join(pair): number for number, pair in enumerate(itertools.product(ALPHABET, repeat=2))}
REMOTE_NAME = re.compile(r"^([a-z]+)([a-zA-Z0-9]{2})\.tfrecord$")
MD5 = re.compile(r"^[0-9a-f]{32}$")
MAX_PLAN_BYTES = 16 << 20  # the largest official plan is about 230 kB
STATE_FILE = "download.json"  # beside the shards: the plan's selection and the files verified so far


@dataclasses.dataclass(frozen=True)
class Partition:
    version: str
    level: str
    split: str

    @classmethod
    def parse(cls, text: str) -> "Partition":
        parts = text.strip("/").split("/")
        if len(parts) != 3 or not parts[0].isdigit() or parts[1] not in LEVELS or parts[2] not in SPLITS:
            raise ConfigError(
                f"partition {text!r}: expected VERSION/LEVEL/SPLIT, e.g. 2/video/train "
                f"(LEVEL one of {', '.join(LEVELS)}; SPLIT one of {', '.join(SPLITS)})"
            )
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.version}/{self.level}/{self.split}"

    def plan_url(self, host: str = PLAN_HOST) -> str:
        return f"{host.rstrip('/')}/{self.version}/download_plans/{self.level}_{self.split}.json"

    def file_url(self, host: str, name: str) -> str:
        return f"{host.rstrip('/')}/{self}/{name}"


def parse_shard(text: str) -> tuple[int, int]:
    """ "i,N" -> (i, N) with 1 <= i <= N, as the official `shard` variable."""
    try:
        index, count = (int(part) for part in text.split(","))
    except ValueError:
        index = count = 0
    if not 1 <= index <= count:
        raise ConfigError(f"shard {text!r}: expected i,N with integers 1 <= i <= N (e.g. 1,100 for 1/100 of the files)")
    return index, count


def in_shard(name: str, shard: tuple[int, int]) -> bool:
    index, count = shard
    return int(hashlib.md5(name.encode()).hexdigest(), 16) % count == index - 1


def local_name(remote: str) -> str:
    """`trainKH.tfrecord` -> `train2265.tfrecord` (the two-character id as its index)."""
    match = REMOTE_NAME.match(remote)
    if not match:
        raise DataError(f"file name {remote!r} is not <split><2 chars of [a-zA-Z0-9]>.tfrecord")
    return f"{match.group(1)}{INDEX[match.group(2)]:04d}.tfrecord"


def mirror_host(mirror: str) -> str:
    if mirror not in MIRRORS:
        raise ConfigError(f"mirror {mirror!r}: choose one of {', '.join(MIRRORS)}")
    return f"http://{mirror}.data.yt8m.org"


def parse_plan(raw: bytes, url: str) -> dict[str, str]:
    """The plan's {remote name: md5}, every name and digest checked (a hostile plan never names a path)."""
    try:
        files = json.loads(raw)["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(
            f'not a download plan ({error.__class__.__name__}: {error}); expected {{"files": {{...}}}}', source=url
        ) from error
    if not isinstance(files, dict) or not files:
        raise DataError('the plan\'s "files" is not a non-empty mapping', source=url)
    for name, digest in files.items():
        if not REMOTE_NAME.match(name) or not isinstance(digest, str) or not MD5.match(digest.lower()):
            raise DataError(
                f"entry {name!r}: {digest!r} is not a file name <split><2 chars>.tfrecord with an md5 of 32 hex digits",
                source=url,
            )
    return {name: digest.lower() for name, digest in files.items()}


@dataclasses.dataclass
class Summary:
    partition: str
    shard: str
    selected: int  # files of the plan in this shard
    downloaded: list[str]
    skipped: list[str]  # verified by an earlier run
    failed: dict[str, str]  # local name -> why
    bytes: int
    seconds: float


def download(
    partition: str,
    out: str,
    shard: str = "1,1",
    mirror: str = "us",
    base_url: str | None = None,
    jobs: int = 4,
    retries: int = 5,
    backoff_s: float = 0.5,
    staging: str | None = None,
    progress: bool | None = None,
) -> Summary:
    """Downloads the files of `partition` in `shard` into `out` (a directory or s3://bucket/prefix).

    `base_url` replaces both official hosts (plan and mirror), for a private mirror or a test server.
    Raises DownloadError naming every file that failed; the others are kept, so a rerun resumes.
    """
    part = Partition.parse(partition)
    selection = parse_shard(shard)
    if jobs < 1 or retries < 0:
        raise ConfigError(f"jobs={jobs}, retries={retries}: need jobs >= 1 and retries >= 0")
    plan_host, file_host = (base_url, base_url) if base_url else (PLAN_HOST, mirror_host(mirror))
    started = time.monotonic()
    plan_url = part.plan_url(plan_host)
    plan = parse_plan(transfer.fetch_small(plan_url, MAX_PLAN_BYTES, retries, backoff_s), plan_url)
    chosen = {name: digest for name, digest in sorted(plan.items()) if in_shard(name, selection)}
    state_uri = storage.join(out, STATE_FILE)
    verified = _verified(state_uri)
    remote = storage.is_remote(out)
    staging = staging or os.path.join(tempfile.gettempdir(), "ytlabel-download", str(part).replace("/", "_"))
    folder = staging if remote else storage.parse(out).path
    os.makedirs(folder, exist_ok=True)
    log.info("%s: %d of %d files in shard %s -> %s", plan_url, len(chosen), len(plan), shard, out)
    summary = Summary(str(part), shard, len(chosen), [], [], {}, 0, 0.0)
    lock = threading.Lock()
    bar = transfer.ProgressBar(len(chosen), enabled=sys.stderr.isatty() if progress is None else progress)

    def one(name: str, digest: str) -> None:
        target = local_name(name)
        final_uri = storage.join(out, target)
        if _already_there(final_uri, os.path.join(folder, target), digest, verified.get(target) == digest, remote):
            with lock:
                summary.skipped.append(target)
            bar.advance(target, "already verified")
            return
        try:
            size = transfer.fetch_verified(
                part.file_url(file_host, name), os.path.join(folder, target), digest, retries, backoff_s, bar
            )
            if remote:
                storage.upload(os.path.join(folder, target), final_uri)
                os.remove(os.path.join(folder, target))
        except (transfer.DownloadError, storage.StorageError) as error:
            with lock:
                summary.failed[target] = str(error)
            bar.advance(target, "FAILED")
            return
        with lock:
            summary.downloaded.append(target)
            summary.bytes += size
            verified[target] = digest
            storage.write_json(state_uri, {"verified": verified})
        bar.advance(target, f"{size / 1e6:.1f} MB, md5 ok")

    with bar, concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(one, name, digest) for name, digest in chosen.items()]:
            future.result()
    summary.seconds = round(time.monotonic() - started, 2)
    summary.downloaded.sort()
    summary.skipped.sort()
    if summary.failed:
        reasons = "; ".join(f"{name}: {why}" for name, why in sorted(summary.failed.items()))
        kept = len(summary.downloaded) + len(summary.skipped)
        raise transfer.DownloadError(
            f"{len(summary.failed)} of {len(chosen)} files failed ({reasons}); {kept} "
            f"verified files are kept in {out} and a rerun resumes"
        )
    return summary


def _verified(state_uri: str) -> dict[str, str]:
    if not storage.exists(state_uri):
        return {}
    state = storage.read_json(state_uri)
    return dict(state.get("verified", {})) if isinstance(state, dict) else {}


def _already_there(final_uri: str, local_path: str, digest: str, recorded: bool, remote: bool) -> bool:
    """A local file counts when its md5 matches; an object when an earlier run recorded it verified."""
    if remote:
        return recorded and storage.exists(final_uri)
    return os.path.isfile(local_path) and not os.path.islink(local_path) and transfer.md5(local_path) == digest
