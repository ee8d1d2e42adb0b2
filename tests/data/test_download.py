"""`probe data download` against a loopback HTTP server: full, resumed, short, wrong size, unsafe archives."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from probe.data.download import RemoteFile, download_dataset, fetch, plan_files, safe_extract
from probe.errors import DataError, ProbeError
from tests.data.fixtures import write_tar, write_zip

PAYLOAD = bytes(range(256)) * 40  # 10240 bytes


class _Server:
    """Serves ``files`` with HTTP Range support; ``truncate`` sends only that many bytes of a response."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ranges: list[str | None] = []
        self.truncate: int | None = None
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                header = self.headers.get("Range")
                server.ranges.append(header)
                start = 0
                if header and not server.ignore_range:
                    start = int(header.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if server.truncate is None else body[:server.truncate])
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = _Server()
    srv.files["/file.bin"] = PAYLOAD
    yield srv
    srv.close()


def test_full_download_writes_the_exact_bytes_and_no_part_file(tmp_path, server):
    dest = tmp_path / "file.bin"
    result = fetch(server.url("file.bin"), dest, size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                   progress=False)
    assert dest.read_bytes() == PAYLOAD and result.status == "downloaded" and result.bytes_received == len(PAYLOAD)
    assert not (tmp_path / "file.bin.part").exists() and server.ranges == [None]


def test_partial_file_is_resumed_with_a_range_request(tmp_path, server):
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:4000])
    result = fetch(server.url("file.bin"), dest, progress=False)
    assert server.ranges == ["bytes=4000-"]
    assert result.status == "resumed" and result.bytes_received == len(PAYLOAD) - 4000
    assert dest.read_bytes() == PAYLOAD


def test_short_transfer_keeps_the_part_file_and_the_next_run_completes_it(tmp_path, server):
    dest = tmp_path / "file.bin"
    server.truncate = 3000
    with pytest.raises(DataError, match=r"stopped at 3000 of 10240 bytes.*run again to resume"):
        fetch(server.url("file.bin"), dest, progress=False)
    assert (tmp_path / "file.bin.part").stat().st_size == 3000 and not dest.exists()
    server.truncate = None
    fetch(server.url("file.bin"), dest, progress=False)
    assert dest.read_bytes() == PAYLOAD and server.ranges[-1] == "bytes=3000-"


def test_server_ignoring_range_restarts_from_scratch(tmp_path, server):
    (tmp_path / "file.bin.part").write_bytes(b"garbage")
    server.ignore_range = True
    result = fetch(server.url("file.bin"), tmp_path / "file.bin", progress=False)
    assert result.status == "downloaded" and (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_already_complete_part_file_is_accepted_on_416(tmp_path, server):
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD)
    fetch(server.url("file.bin"), tmp_path / "file.bin", progress=False)
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_size_mismatch_is_an_error_naming_the_url(tmp_path, server):
    with pytest.raises(DataError, match=r"file.bin: server reports 10240 bytes, expected 999"):
        fetch(server.url("file.bin"), tmp_path / "file.bin", size=999, progress=False)
    assert not (tmp_path / "file.bin").exists()


def test_checksum_mismatch_removes_the_download(tmp_path, server):
    with pytest.raises(DataError, match="SHA-256"):
        fetch(server.url("file.bin"), tmp_path / "file.bin", sha256="0" * 64, progress=False)
    assert not (tmp_path / "file.bin").exists() and not (tmp_path / "file.bin.part").exists()


def test_http_error_names_the_url(tmp_path, server):
    with pytest.raises(DataError, match=r"missing.bin: HTTP 404"):
        fetch(server.url("missing.bin"), tmp_path / "missing.bin", progress=False)


def test_download_dataset_fetches_and_extracts_a_tar_once(tmp_path, server):
    archive = write_tar(tmp_path / "src" / "Test134.tar.gz", {"Test134/img-a.jpg": b"jpeg", "Test134/img-b.jpg": b"x"})
    server.files["/Test134.tar.gz"] = archive.read_bytes()
    root = tmp_path / "make3d"
    report = download_dataset("make3d", root, urls=[server.url("Test134.tar.gz")], progress=False)
    assert (root / "Test134" / "img-a.jpg").read_bytes() == b"jpeg"
    assert report.files[0].extracted == ["Test134"] and report.files[0].status == "downloaded"
    again = download_dataset("make3d", root, urls=[server.url("Test134.tar.gz")], progress=False)
    assert again.files[0].status == "present" and again.files[0].extracted == [] and len(server.ranges) == 1


def test_nyu_zip_is_kept_in_place_not_extracted(tmp_path, server):
    server.files["/nyu_data.zip"] = write_zip(tmp_path / "nyu_data.zip", {"data/nyu2_test.csv": b""}).read_bytes()
    root = tmp_path / "nyu"
    download_dataset("nyu", root, urls=[server.url("nyu_data.zip")], progress=False)
    assert (root / "nyu_data.zip").is_file() and not (root / "data").exists()


@pytest.mark.parametrize("name", ["../evil", "/tmp/probe-evil-absolute", "ok/../../evil"])
def test_tar_member_escaping_the_target_is_rejected_before_writing(tmp_path, name):
    archive = write_tar(tmp_path / "bad.tar.gz", {"good.txt": b"fine", name: b"pwned"})
    target = tmp_path / "out"
    with pytest.raises(DataError, match=r"bad.tar.gz: member .*refusing to extract"):
        safe_extract(archive, target)
    assert not (tmp_path / "evil").exists() and not Path("/tmp/probe-evil-absolute").exists()
    assert not (target / "good.txt").exists()


def test_zip_member_with_dotdot_is_rejected(tmp_path):
    archive = write_zip(tmp_path / "bad.zip", {"a.txt": b"a", "../evil": b"pwned"})
    with pytest.raises(DataError, match=r"bad.zip: member '../evil' contains '..'"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out" / "a.txt").exists()


def test_symlink_pointing_outside_is_rejected_but_inside_is_kept(tmp_path):
    bad = write_tar(tmp_path / "bad.tar", {"a.txt": b"a"}, symlinks={"link": "../../etc"}, mode="w")
    with pytest.raises(DataError, match=r"link 'link' -> '../../etc' points outside"):
        safe_extract(bad, tmp_path / "out")
    good = write_tar(tmp_path / "good.tar", {"d/a.txt": b"a"}, symlinks={"d/alias": "a.txt"}, mode="w")
    assert safe_extract(good, tmp_path / "ok") == ["d"]
    assert (tmp_path / "ok" / "d" / "alias").read_bytes() == b"a"


def test_kitti_says_registration_is_needed_and_generated_data_has_nothing(tmp_path):
    with pytest.raises(ProbeError, match="KITTI requires registration"):
        plan_files("kitti")
    assert plan_files("kitti", ["https://example.org/x/data_depth_annotated.zip"])[0].extract
    assert [f.filename for f in plan_files("make3d")] == ["Train400Img.tar.gz", "Train400Depth.tgz",
                                                          "Test134.tar.gz", "Test134Depth.tar.gz"]
    assert plan_files("nyu") == [RemoteFile("https://s3-eu-west-1.amazonaws.com/densedepth/nyu_data.zip",
                                            "nyu_data.zip")]
    with pytest.raises(ProbeError, match="--url: expected an http"):
        plan_files("make3d", ["ftp://x/y.tgz"])


def test_cli_download_reports_files_and_rejects_kitti(tmp_path, server, run_cli):
    archive = write_tar(tmp_path / "Test134Depth.tar.gz", {"Gridlaserdata/depth_sph_corr-a.mat": b"m"})
    server.files["/Test134Depth.tar.gz"] = archive.read_bytes()
    res = run_cli("data", "download", "make3d", "--data-root", tmp_path / "m", "--url", server.url("Test134Depth.tar.gz"))
    assert res.code == 0, res
    assert "Test134Depth.tar.gz: downloaded" in res.out and "extracted Gridlaserdata" in res.out
    assert (tmp_path / "m" / "Gridlaserdata" / "depth_sph_corr-a.mat").is_file()
    res = run_cli("data", "download", "kitti", "--data-root", tmp_path / "k")
    assert res.code == 2 and "registration" in res.err


def _ordered_tar(path: Path, members: list[tuple[str, str, bytes | str]]) -> Path:
    """A tar whose members come in the given order: (name, "file"|"dir"|"symlink"|"hardlink", data or link)."""
    import io
    import tarfile

    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}
    with tarfile.open(path, "w") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.type = types[kind]
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                info.linkname = payload if isinstance(payload, str) else ""
                tar.addfile(info)
    return path


ESCAPES = {
    "symlink chain through the archive's own link": ([("d", "symlink", "."), ("p", "symlink", "d/.."),
                                                      ("p/evil", "file", b"pwned")], r"link 'p' -> 'd/\.\.' points outside"),
    "symlink then a file written through it": ([("sub", "symlink", "../.."), ("sub/evil", "file", b"pwned")],
                                               r"link 'sub' -> '\.\./\.\.' points outside|inside the symlink"),
    "inside-pointing symlink then a file through it": ([("sub", "symlink", "."), ("sub/evil", "file", b"x")],
                                                       r"member 'sub/evil' lies inside the symlink 'sub'"),
    "symlink to an absolute path": ([("abs", "symlink", "/etc")], r"link 'abs' -> '/etc' points outside"),
    "hard link to a file outside": ([("h", "hardlink", "../../etc/hostname")], r"member .*contains '\.\.'"),
    "hard link to a path that is no earlier member": ([("h", "hardlink", "etc/hostname")],
                                                      r"hard link 'h' -> 'etc/hostname' does not name a regular file"),
    "absolute member name": ([("/tmp/probe-evil-abs", "file", b"pwned")], r"has an absolute path"),
    "dot-dot member name": ([("a/../../evil", "file", b"pwned")], r"contains '\.\.'"),
    "a name listed twice (symlink, then file)": ([("x", "symlink", "y"), ("x", "file", b"pwned")], r"'x' appears twice"),
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_archive_escapes_are_refused_by_probes_own_checks_without_the_data_filter(tmp_path, monkeypatch, case):
    import tarfile

    monkeypatch.delattr(tarfile, "data_filter", raising=False)  # Python before 3.10.12 / 3.11.4
    members, message = ESCAPES[case]
    archive = _ordered_tar(tmp_path / "bad.tar", [("good.txt", "file", b"fine"), *members])
    target = tmp_path / "deep" / "out"
    with pytest.raises(DataError, match=rf"bad.tar: .*({message})"):
        safe_extract(archive, target)
    assert not (target / "good.txt").exists(), "nothing is written unless every member is safe"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar", "deep"]
    assert not Path("/tmp/probe-evil-abs").exists()


def test_safe_links_and_hard_links_to_earlier_members_still_extract_without_the_filter(tmp_path, monkeypatch):
    import tarfile

    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    archive = _ordered_tar(tmp_path / "ok.tar", [("d/a.txt", "file", b"a"), ("d/alias", "symlink", "a.txt"),
                                                 ("d/hard", "hardlink", "d/a.txt"), ("top", "symlink", "d/alias")])
    assert safe_extract(archive, tmp_path / "out") == ["d", "top"]
    assert (tmp_path / "out" / "top").read_bytes() == (tmp_path / "out" / "d" / "hard").read_bytes() == b"a"


def test_an_archive_larger_than_the_free_disk_space_is_refused_before_writing(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    archive = write_tar(tmp_path / "big.tar.gz", {"a.bin": b"\x00" * 5000})
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 100, 100))
    with pytest.raises(DataError, match=r"big.tar.gz: extracting needs 5,000 bytes, only 100 are free"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "a.bin").exists()
