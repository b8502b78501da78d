"""Reading the small files a user names (the config, a file: secret, a key): only regular files,
only up to a size cap, and `~user` paths that say which user is unknown.

A FIFO would block the reader forever and /dev/zero would fill the memory, so both are refused
before a byte is read; the errors say what the path is instead (UnreadableFile.reason).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# the size caps' units (lab.units); named here for the callers that import them from lab.files
from lab.units import KIB as KIB
from lab.units import MIB as MIB


class UnreadableFile(Exception):
    """A file that was not read. `kind` is missing | directory | special | too-large | os;
    `reason` is a short lower-case phrase ("not a regular file (a FIFO)")."""

    def __init__(self, path: Path, kind: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.kind = kind
        self.reason = reason


def expand_user(path: str | Path) -> Path:
    """`path` with a leading ~ or ~user expanded. ValueError naming the user when there is no
    such user (pathlib raises a bare RuntimeError)."""
    path = Path(path)
    try:
        return path.expanduser()
    except RuntimeError:
        first = path.parts[0] if path.parts else str(path)
        user = first[1:]
        if not user:
            raise ValueError(f"cannot expand {first}: no home directory ($HOME is unset)") from None
        raise ValueError(
            f'no user "{user}" on this machine, so {first} cannot be expanded'
        ) from None


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return f"not a regular file ({kind})"


def _size_text(limit: int) -> str:
    # a cap is a whole number of KiB or MiB: "1 MiB", not lab.units.size's "1.0 MiB"
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit // KIB} KiB"


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Raises UnreadableFile.

    Never blocks: a FIFO or device is refused by stat before it is opened, and the open is
    O_NONBLOCK so one swapped in between the stat and the open is refused by fstat too."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UnreadableFile(path, "missing", "no such file") from None
    except OSError as exc:
        raise UnreadableFile(path, "os", f"cannot read: {_why(exc)}") from None
    problem = _not_regular(mode)
    if problem is not None:
        raise UnreadableFile(path, "directory" if stat.S_ISDIR(mode) else "special", problem)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UnreadableFile(path, "missing", "no such file") from None
    except OSError as exc:
        raise UnreadableFile(path, "os", f"cannot read: {_why(exc)}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        problem = _not_regular(st.st_mode)
        if problem is not None:
            raise UnreadableFile(path, "special", problem)
        too_large = UnreadableFile(path, "too-large", f"larger than {_size_text(limit)}")
        if st.st_size > limit:
            raise too_large
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise UnreadableFile(path, "os", f"cannot read: {_why(exc)}") from None
        if len(data) > limit:  # grew since the fstat
            raise too_large
        return data


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
