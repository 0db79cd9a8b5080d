"""Writing a report to disk: no silent overwrite, atomic replacement, no temporary file left behind."""

from __future__ import annotations

import os
import pathlib
import secrets

from .._errors import FisherlabError, OutputExistsError

__all__ = ["write_report"]


def write_report(path: str | os.PathLike[str], html: str, *, force: bool = False) -> pathlib.Path:
    """Write ``html`` to ``path`` atomically (UTF-8).

    The text goes to a temporary file in the same directory, is flushed and
    ``fsync``-ed, then moved over ``path`` with :func:`os.replace`, so a reader
    never sees a half-written report and an interrupted write leaves any old
    file intact. The temporary file's name is chosen before it is created, so an
    exception at any point (``KeyboardInterrupt`` included) removes it. Any
    existing directory entry counts as existing, a dangling symbolic link
    included. Parent directories are *not* created: a missing directory is
    more often a typo than a wish.

    Args:
        path: destination file, e.g. ``"report.html"``.
        html: the page, e.g. from :func:`~fisherlab.report.build_html`.
        force: overwrite an existing file.

    Returns:
        The path written, as a :class:`pathlib.Path`.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
        FisherlabError: the parent directory does not exist, or ``path`` is a directory.
        OSError: the operating system refused the write (permissions, full disk); the
            message names ``path``, not the temporary file.

    Examples:
        >>> import pathlib, tempfile
        >>> from fisherlab.report import write_report
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "r.html"
        >>> write_report(out, "<p>hi</p>").read_text()
        '<p>hi</p>'
    """
    target = pathlib.Path(path)
    parent = target.parent if str(target.parent) else pathlib.Path(".")
    if not parent.is_dir():
        raise FisherlabError(
            f"cannot write the report to {str(target)!r}: the directory {str(parent)!r} does not exist; "
            "create it first or choose another path"
        )
    if target.is_dir():
        raise FisherlabError(
            f"cannot write the report to {str(target)!r}: it is a directory; give a file name"
        )
    if os.path.lexists(target) and not force:
        raise OutputExistsError(f"{str(target)!r} already exists; pass --force (force=True) to overwrite it")
    tmp = parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(html)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:  # never created, or already moved into place
            pass
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):
            message = f"cannot write the report to {str(target)!r}: {exc.strerror or exc}"
            raise (OSError(exc.errno, message) if exc.errno is not None else OSError(message)) from exc
        raise
    return target
