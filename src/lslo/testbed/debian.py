"""Read files out of Debian packages in memory, with the standard library only.

A ``.deb`` is an ``ar`` archive whose ``data.tar.{xz,gz,zst}`` member holds the files; no
``dpkg`` is needed to read it, so the corpus builders work on any machine that has the
pinned ``.deb`` files (fetched once with ``apt-get download``).
"""

from __future__ import annotations

import struct
import tarfile
from collections.abc import Callable
from io import BytesIO

from lslo.errors import LSLoError


class DebError(LSLoError):
    """A file is not a readable Debian package."""


def deb_data(deb: bytes) -> tuple[str, bytes]:
    """The name and bytes of the ``data.tar.*`` member of a Debian package."""
    if not deb.startswith(b"!<arch>\n"):
        raise DebError("not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(deb):
        header = deb[pos:pos + 60]
        name = header[:16].decode("ascii", errors="replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(f"corrupt ar header at byte {pos}") from None
        if name.startswith("data.tar"):
            return name, deb[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
    raise DebError("no data.tar member in the Debian package")


def deb_files(deb: bytes, want: Callable[[str], bool]) -> dict[str, bytes]:
    """``{path: bytes}`` of the regular files of a package whose path (no leading ``./``) ``want``s."""
    name, data = deb_data(deb)
    if name.endswith(".zst"):
        raise DebError("data.tar.zst members are not supported (bookworm packages use xz)")
    mode = "r:xz" if name.endswith(".xz") else "r:gz" if name.endswith(".gz") else "r:"
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=BytesIO(data), mode=mode) as tf:
            for m in tf.getmembers():
                path = m.name[2:] if m.name.startswith("./") else m.name
                if m.isfile() and want(path):
                    out[path] = tf.extractfile(m).read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DebError(f"unreadable {name}: {e}") from None
    return out


def mo_catalog(mo: bytes) -> dict[str, str]:
    """``{key: translation}`` of a gettext ``.mo`` file; ``key`` is ``msgctxt\\x04msgid`` or
    ``msgid``. Plural entries keep their singular form; untranslated (empty) entries are absent."""
    import gettext

    try:
        cat = gettext.GNUTranslations(BytesIO(mo))._catalog  # noqa: SLF001 - the parsed catalogue
    except (OSError, UnicodeDecodeError, struct.error) as e:
        raise DebError(f"corrupt .mo catalogue ({e})") from None
    out: dict[str, str] = {}
    for key, text in cat.items():
        if isinstance(key, tuple):  # (msgid, plural index)
            if key[1] != 0:
                continue
            key = key[0]
        if key and text:
            out[key] = text
    return out
