"""The local backend of the storage layer (files under a path), and the one atomic write of the tree.

Every file anything in ytlabel writes locally (shards, checkpoints, models, the encoder, run records) is
written under a temporary name beside its target and renamed into place when complete: `AtomicTarget`.
The temporary name is the one partial-name rule, `PARTIAL_PREFIX` + random + "-" + the target's name, so
that it keeps the target's suffix (Keras and numpy choose a format by it) and every listing, upload and
sync skips it (`is_partial`).
"""

import contextlib
import os
import secrets
import shutil
from typing import BinaryIO

from ytlabel.storage.paths import Location, NotFound, StorageError

PARTIAL_PREFIX = ".partial-"


def is_partial(key: str) -> bool:
    """True when the last segment of `key` is the temporary name of an unfinished write."""
    return key.rsplit("/", 1)[-1].startswith(PARTIAL_PREFIX)


class AtomicTarget:
    """A temporary file (or directory) beside `path`, which becomes `path` only when complete.

    As a context manager it yields the temporary path, renames it onto `path` when the block ends cleanly
    and removes it when the block raises. `commit()` and `discard()` do the same for a writer that
    outlives one block (TFRecordWriter). The file is created empty, with the permissions open() gives.

    Example:
        with AtomicTarget(run.path("model.pt")) as partial:
            torch.save(state, partial)
    """

    def __init__(self, path: str | os.PathLike, directory: bool = False):
        self.path = os.fspath(path)
        self.directory = directory
        folder, name = os.path.split(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
            self.partial = _create(folder, name, directory)
        except OSError as error:
            raise StorageError(f"cannot write {self.path} ({error.strerror})", error.strerror) from error

    def commit(self) -> None:
        """Renames the temporary path onto the target (a directory replaces only an empty one)."""
        if self.directory and os.path.isdir(self.path):
            os.rmdir(self.path)
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        if self.directory:
            shutil.rmtree(self.partial, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.partial)

    def __enter__(self) -> str:
        return self.partial

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()


def _create(folder: str, name: str, directory: bool) -> str:
    for _ in range(100):
        partial = os.path.join(folder, f"{PARTIAL_PREFIX}{secrets.token_hex(4)}-{name}")
        try:
            if directory:
                os.mkdir(partial)
            else:
                os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return partial
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {name} in {folder}")


def atomic_write(path: str, data: bytes | str) -> None:
    """Writes `data` to the local file `path` through an AtomicTarget."""
    with AtomicTarget(path) as partial, open(partial, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)


# --- the backend: the operations storage/__init__.py dispatches for local locations ------------------------


def open_read(location: Location, buffering: int) -> BinaryIO:
    if os.path.exists(location.path) and not os.path.isfile(location.path):  # opening a FIFO would block
        raise StorageError(f"{location.uri}: not a regular file", "not a regular file")
    try:
        return open(location.path, "rb", buffering=buffering)
    except FileNotFoundError as error:
        raise NotFound(f"{location.uri}: no such file", error.strerror) from error
    except OSError as error:
        raise StorageError(f"cannot open {location.uri} ({error.strerror})", error.strerror) from error


def exists(location: Location) -> bool:
    return os.path.exists(location.path)


def is_file(location: Location) -> bool:
    return os.path.isfile(location.path)


def size(location: Location) -> int:
    try:
        return os.path.getsize(location.path)
    except OSError as error:
        raise NotFound(f"{location.uri}: no such file") from error


def listdir(location: Location, suffix: str) -> list[str]:
    """Every file under the directory, as URIs spelled like `location.uri`. Symbolic links to directories
    are not followed, and partial writes are skipped."""
    found = []
    for folder, _, names in os.walk(location.path):
        for name in names:
            if not is_partial(name) and name.endswith(suffix):
                found.append(os.path.join(folder, name))
    root = location.uri.rstrip("/")
    return sorted(root + "/" + os.path.relpath(path, location.path).replace(os.sep, "/") for path in found)


def write_bytes(location: Location, data: bytes) -> None:
    atomic_write(location.path, data)


def put_file(path: str, location: Location) -> None:
    """Copies the local file `path` to `location`."""
    get_file(Location(uri=path, path=path), location.path)


def get_file(location: Location, path: str) -> None:
    """Copies the file at `location` to the local `path`."""
    try:
        with AtomicTarget(path) as partial:
            shutil.copyfile(location.path, partial)
    except FileNotFoundError as error:
        raise NotFound(f"{location.uri}: no such file") from error


def delete(location: Location) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(location.path)
