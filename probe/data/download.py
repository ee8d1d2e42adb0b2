"""Download a dataset's published files: streamed, resumable, size-checked, safely extracted.

``download_dataset(name, root)`` fetches the files registered for ``name`` in
:data:`DOWNLOADS` (or the ``urls`` given instead) into ``root``:

* the transfer streams into ``<file>.part`` with a rich progress bar; a
  ``.part`` left by an interrupted run is resumed with an HTTP ``Range``
  request (a server that ignores it sends the whole file, which then
  replaces the partial one);
* the received size must equal the server's ``Content-Length`` /
  ``Content-Range`` total and the registered size when known, and the SHA-256
  when known; only then is ``.part`` renamed to the file;
* archives marked for extraction (zip, tar, tar.gz, tgz) are extracted into
  ``root`` after every member is checked by probe itself (on every supported
  interpreter, with or without ``tarfile.data_filter``): an absolute name, a
  ``..`` component, a name listed twice, a member inside one of the
  archive's symlinks, a symlink whose target (followed through the archive's
  other links) leaves ``root``, a hard link to anything but an earlier
  regular member, a device or FIFO, or more bytes than the free disk space
  rejects the whole archive before anything is written.

``nyu_data.zip`` is not extracted: the ``nyu`` reader reads it in place.
KITTI needs a registration, so it has no public URL here; ``urls=`` (CLI
``--url``) downloads any file you are entitled to.

    >>> report = download_dataset("make3d", Path("/data/make3d"))   # doctest: +SKIP
    >>> print(report.summary())                                     # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from probe.data.base import DATASETS
from probe.data.images import check_data_file
from probe.errors import DataError, ProbeError, reason
from probe.io import atomic_write, ensure_dir
from probe.limits import MAX_ARCHIVE_MEMBERS
from probe.progress import progress_bar
from probe.registry import Registry

CHUNK_BYTES = 1 << 20
MIB = float(1 << 20)
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


@dataclass(frozen=True)
class RemoteFile:
    """One published file: where it lives, its name under the data root, what it must be."""

    url: str
    filename: str
    size: int | None = None
    sha256: str | None = None
    extract: bool = False


@dataclass(frozen=True)
class DownloadPlan:
    """What ``probe data download NAME`` fetches; ``unavailable`` says why there is no public URL."""

    files: tuple[RemoteFile, ...] = ()
    unavailable: str = ""
    extract_archives: bool = True


DOWNLOADS: Registry[DownloadPlan] = Registry("download")

DOWNLOADS.register("nyu", description="DenseDepth's nyu_data.zip, read in place")(
    DownloadPlan(
        files=(RemoteFile("https://s3-eu-west-1.amazonaws.com/densedepth/nyu_data.zip", "nyu_data.zip"),),
        extract_archives=False,
    )
)
DOWNLOADS.register("nyu_labeled", description="labeled .mat and the standard split")(
    DownloadPlan(
        files=(
            # byte length as recorded by a published download script for the canonical file
            RemoteFile(
                "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat",
                "nyu_depth_v2_labeled.mat",
                size=2972037809,
            ),
            RemoteFile("http://horatio.cs.nyu.edu/mit/silberman/indoor_seg_sup/splits.mat", "splits.mat"),
        )
    )
)
DOWNLOADS.register("make3d", description="Make3D Train400 / Test134 images and laser grids")(
    DownloadPlan(
        files=(
            RemoteFile(
                "http://cs.stanford.edu/group/reconstruction3d/Train400Img.tar.gz", "Train400Img.tar.gz", extract=True
            ),
            RemoteFile(
                "http://cs.stanford.edu/group/reconstruction3d/Train400Depth.tgz", "Train400Depth.tgz", extract=True
            ),
            RemoteFile(
                "http://www.cs.cornell.edu/~asaxena/learningdepth/Test134.tar.gz", "Test134.tar.gz", extract=True
            ),
            RemoteFile(
                "http://www.cs.cornell.edu/~asaxena/learningdepth/Test134Depth.tar.gz",
                "Test134Depth.tar.gz",
                extract=True,
            ),
        )
    )
)
DOWNLOADS.register("kitti", description="registration required")(
    DownloadPlan(
        unavailable=(
            "kitti: KITTI requires registration, so there is no public URL to fetch; register at "
            "http://www.cvlibs.net/datasets/kitti/eval_depth.php?benchmark=depth_prediction, then download "
            "data_depth_annotated.zip and the raw drives yourself or pass --url with your download links"
        )
    )
)


@dataclass
class FileResult:
    filename: str
    status: str  # "downloaded" | "resumed" | "present"
    bytes_received: int
    size: int
    extracted: list[str] = field(default_factory=list)


@dataclass
class DownloadReport:
    dataset: str
    root: str
    files: list[FileResult]

    def summary(self) -> str:
        lines = [f"{self.dataset}: files under {self.root}"]
        for f in self.files:
            extra = f"; extracted {', '.join(f.extracted)}" if f.extracted else ""
            lines.append(f"  {f.filename}: {f.status}, {f.size} bytes ({f.bytes_received} received){extra}")
        return "\n".join(lines)


# -- transfer -----------------------------------------------------------------------------------

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$")


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``"bytes 100-199/200"`` -> ``(100, 200)``; ``"bytes */200"`` -> ``(None, 200)``."""
    match = _CONTENT_RANGE.match(value or "")
    if match is None:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return start, total


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(
    url: str,
    dest: Path,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> FileResult:
    """Stream ``url`` to ``dest`` via ``dest.part`` (resumed if present); verify size and checksum.

    Raises DataError naming the URL or file on an HTTP error, a short or long
    transfer, a size or checksum mismatch.  A short transfer keeps ``.part``
    so that the next call resumes it.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "probe-data-download", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            _, total = _parse_content_range(exc.headers.get("Content-Range"))
            if total == offset:
                return _finish(url, part, dest, offset, 0, "resumed", (total, size), sha256)
            raise DataError(
                f"{part}: partial file has {offset} bytes but {url} has {total if total is not None else 'fewer'}; "
                "delete the .part file and run again"
            ) from None
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"{url}: cannot connect ({reason})") from None

    with response:
        start, total = _parse_content_range(response.headers.get("Content-Range"))
        if offset and response.status == 206:
            if start != offset:
                raise DataError(f"{url}: asked to resume at byte {offset}, server answered from byte {start}")
            mode, status = "ab", "resumed"
        else:
            offset, mode, status = 0, "wb", "downloaded"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if size is not None and total is not None and total != size:
            raise DataError(f"{url}: server reports {total} bytes, expected {size}; not downloading")
        free = shutil.disk_usage(part.parent).free
        if total is not None and total - offset > free:
            raise DataError(f"{url}: {total - offset:,} bytes to download, only {free:,} free under {part.parent}")
        received = _stream(response, part, mode, offset, total, dest.name, progress)
    return _finish(url, part, dest, offset + received, received, status, (total, size), sha256)


def _stream(response, part: Path, mode: str, offset: int, total: int | None, label: str, progress: bool | None) -> int:
    received = 0
    disable = None if progress is None else not progress
    with progress_bar(disable=disable) as bar, open(part, mode) as handle:
        task = bar.add_task(f"{label} (MiB)", total=(total / MIB) if total else None, completed=int(offset / MIB))
        while True:
            try:
                block = response.read(CHUNK_BYTES)
            except (OSError, ValueError) as exc:
                handle.flush()
                raise DataError(
                    f"{label}: transfer broke after {offset + received} bytes ({exc}); "
                    f"{part} is kept, run again to resume"
                ) from None
            if not block:
                break
            handle.write(block)
            received += len(block)
            bar.update(task, advance=len(block) / MIB)
    return received


def _finish(
    url: str,
    part: Path,
    dest: Path,
    have: int,
    received: int,
    status: str,
    expected: tuple[int | None, ...],
    sha256: str | None,
) -> FileResult:
    """Check the complete ``.part`` against every known size (server's, registered) and the checksum."""
    for want in expected:
        if want is None or have == want:
            continue
        if have < want:
            raise DataError(f"{url}: transfer stopped at {have} of {want} bytes; {part} is kept, run again to resume")
        part.unlink()
        raise DataError(f"{url}: received {have} bytes, expected {want}; removed {part}")
    if sha256 is not None:
        actual = _sha256(part)
        if actual != sha256.lower():
            part.unlink()
            raise DataError(f"{url}: SHA-256 {actual} does not match the expected {sha256}; removed {part}")
    os.replace(part, dest)
    return FileResult(dest.name, status, received, have)


# -- extraction ---------------------------------------------------------------------------------
#
# Every member is checked before anything is written, without relying on
# tarfile's extraction filters (absent before Python 3.10.12 / 3.11.4, which
# requires-python allows).  The archive's own links are resolved in a virtual
# tree, so a chain of links that are harmless one by one (``d -> .``,
# ``p -> d/..``) cannot climb out, and no member may be written through a link.

_MAX_LINK_HOPS = 40


def _member_parts(name: str, archive: Path) -> list[str]:
    """A member name as path components, or a DataError if it is absolute, climbs with ``..`` or is empty."""
    posix = name.replace("\\", "/")
    if any(ord(c) < 32 for c in posix):
        raise DataError(f"{archive}: member {name!r} has a control character in its name; refusing to extract")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise DataError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DataError(f"{archive}: member {name!r} contains '..'; refusing to extract")
    return parts


def _resolve_virtual(parts: list[str], links: dict[str, str]) -> list[str] | None:
    """Resolve ``parts`` through the archive's symlinks (``links``: member -> target); None if it escapes."""
    stack: list[str] = []
    queue = list(parts)
    hops = 0
    while queue:
        part = queue.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return None
            stack.pop()
            continue
        stack.append(part)
        target = links.get("/".join(stack))
        if target is not None:
            hops += 1
            if hops > _MAX_LINK_HOPS or target.startswith("/") or re.match(r"^[A-Za-z]:", target):
                return None
            stack.pop()
            queue = target.replace("\\", "/").split("/") + queue
    return stack


@dataclass(frozen=True)
class _Member:
    name: str
    parts: tuple[str, ...]
    kind: str  # "file" | "dir" | "symlink" | "hardlink"
    link: str = ""
    size: int = 0


def check_members(members: list[_Member], archive: Path, target: Path) -> int:
    """Refuse the archive unless every member stays inside ``target``; returns the bytes it will write.

    Rules: names relative without ``..``; no name twice; no member inside a folder that is a
    symlink of the archive (symlink-then-file); symlink targets resolved through the archive's
    other links stay inside; a hard link names a regular file member listed before it; files
    already on disk under ``target`` resolve inside it.
    """
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise DataError(f"{archive}: {len(members):,} members, more than the {MAX_ARCHIVE_MEMBERS:,} probe extracts")
    links = {"/".join(m.parts): m.link for m in members if m.kind == "symlink"}
    seen: dict[str, str] = {}
    for member in members:
        key = "/".join(member.parts)
        if key in seen and not (member.kind == seen[key] == "dir"):
            raise DataError(f"{archive}: member {member.name!r} appears twice; refusing to extract")
        for depth in range(1, len(member.parts)):
            if "/".join(member.parts[:depth]) in links:
                raise DataError(
                    f"{archive}: member {member.name!r} lies inside the symlink "
                    f"{'/'.join(member.parts[:depth])!r}; refusing to extract"
                )
        if not (target / key).resolve().is_relative_to(target):
            raise DataError(f"{archive}: member {member.name!r} would be written outside {target}; refusing to extract")
        if member.kind == "symlink":
            parent = list(member.parts[:-1])
            link = member.link.replace("\\", "/")
            if (
                link.startswith("/")
                or re.match(r"^[A-Za-z]:", link)
                or _resolve_virtual(parent + link.split("/"), links) is None
            ):
                raise DataError(
                    f"{archive}: link {member.name!r} -> {member.link!r} points outside {target}; refusing to extract"
                )
        elif member.kind == "hardlink":
            source = "/".join(_member_parts(member.link, archive))
            if seen.get(source) != "file":
                raise DataError(
                    f"{archive}: hard link {member.name!r} -> {member.link!r} does not name a regular "
                    "file listed before it; refusing to extract"
                )
        seen[key] = member.kind
    return sum(m.size for m in members if m.kind == "file")


def _check_space(archive: Path, target: Path, needed: int) -> None:
    free = shutil.disk_usage(target).free
    if needed > free:
        raise DataError(f"{archive}: extracting needs {needed:,} bytes, only {free:,} are free under {target}")


def _tar_member(m: tarfile.TarInfo, archive: Path) -> _Member:
    kinds = {m.isfile(): "file", m.isdir(): "dir", m.issym(): "symlink", m.islnk(): "hardlink"}
    if True not in kinds:
        raise DataError(f"{archive}: member {m.name!r} is a device or FIFO; refusing to extract")
    return _Member(m.name, tuple(_member_parts(m.name, archive)), kinds[True], m.linkname, m.size if m.isfile() else 0)


def _extract_tar(archive: Path, target: Path) -> list[str]:
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            _check_space(archive, target, check_members([_tar_member(m, archive) for m in members], archive, target))
            extract_filter = getattr(tarfile, "data_filter", None)
            if extract_filter is not None:  # a second line of defence where the interpreter has one
                tar.extractall(target, members=members, filter=extract_filter)
            else:
                tar.extractall(target, members=members)
            return [m.name for m in members]
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{archive}: cannot extract tar archive ({reason(exc)})") from None


def _zip_member(info: zipfile.ZipInfo, archive: Path) -> _Member:
    # zipfile never creates links (a symlink entry becomes a small regular file), so every entry is a file or folder
    kind = "dir" if info.is_dir() else "file"
    return _Member(info.filename, tuple(_member_parts(info.filename, archive)), kind, "", info.file_size)


def _extract_zip(archive: Path, target: Path) -> list[str]:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            _check_space(archive, target, check_members([_zip_member(i, archive) for i in infos], archive, target))
            zf.extractall(target, members=infos)
            return [i.filename for i in infos]
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        raise DataError(f"{archive}: cannot extract zip archive ({reason(exc)})") from None


def safe_extract(archive: Path, target: Path) -> list[str]:
    """Extract a zip or tar archive into ``target`` after checking every member; returns top-level names.

    Nothing is written unless every member stays inside ``target`` (:func:`check_members`)
    and the uncompressed size fits the free disk space.
    """
    target = target.resolve()
    target.mkdir(parents=True, exist_ok=True)
    check_data_file(archive, max_bytes=None)
    if zipfile.is_zipfile(archive):
        names = _extract_zip(archive, target)
    elif tarfile.is_tarfile(archive):
        names = _extract_tar(archive, target)
    else:
        raise DataError(f"{archive}: not a zip or tar archive; expected one of {', '.join(ARCHIVE_SUFFIXES)}")
    return sorted({PurePosixPath(n.replace("\\", "/")).parts[0] for n in names if n.strip("/")})


# -- the command --------------------------------------------------------------------------------


def _is_archive(filename: str) -> bool:
    return filename.lower().endswith(ARCHIVE_SUFFIXES)


def plan_files(name: str, urls: list[str] | None = None) -> list[RemoteFile]:
    """The files ``download_dataset`` would fetch for ``name`` (``urls`` replace the registered ones).

    A URL whose file name matches a registered file inherits its size,
    checksum and extraction flag; any other archive is extracted when the
    dataset's plan extracts archives.
    """
    if name not in DOWNLOADS:
        info = DATASETS.entry(name).meta["info"]
        if not info.needs_root:
            raise ProbeError(f"dataset {name!r} is generated on the fly; there is nothing to download")
        if not urls:
            raise ProbeError(f"dataset {name!r}: no public download is known; get it from {info.source} or pass --url")
    plan = DOWNLOADS.get(name) if name in DOWNLOADS else DownloadPlan(extract_archives=True)
    if not urls:
        if plan.unavailable:
            raise ProbeError(plan.unavailable)
        return list(plan.files)
    known = {f.filename: f for f in plan.files}
    files = []
    for url in urls:
        parsed = urllib.parse.urlparse(url)
        filename = Path(urllib.parse.unquote(parsed.path)).name
        if parsed.scheme not in ("http", "https") or not filename:
            raise ProbeError(f"--url: expected an http(s) URL ending in a file name, got {url!r}")
        base = known.get(filename)
        files.append(
            RemoteFile(
                url,
                filename,
                size=base.size if base else None,
                sha256=base.sha256 if base else None,
                extract=base.extract if base else (plan.extract_archives and _is_archive(filename)),
            )
        )
    return files


def download_dataset(
    name: str, root: Path, urls: list[str] | None = None, progress: bool | None = None, timeout: float = 60.0
) -> DownloadReport:
    """Fetch (or resume) and extract ``name``'s files into ``root``; see the module docstring.

    A file already present with the registered size (or any size when none is
    registered) is not fetched again; an archive whose extraction marker
    ``.<archive>.extracted`` exists is not extracted again.
    """
    files = plan_files(name, urls)
    root = ensure_dir(Path(root).expanduser(), "--data-root")
    results = []
    for remote in files:
        dest = root / remote.filename
        if dest.is_file() and (remote.size is None or dest.stat().st_size == remote.size):
            result = FileResult(remote.filename, "present", 0, dest.stat().st_size)
        else:
            result = fetch(remote.url, dest, size=remote.size, sha256=remote.sha256, progress=progress, timeout=timeout)
        marker = root / f".{remote.filename}.extracted"
        if remote.extract and not marker.exists():
            result.extracted = safe_extract(dest, root)
            atomic_write(marker, "\n".join(result.extracted) + "\n")
        results.append(result)
    return DownloadReport(name, str(root), results)
