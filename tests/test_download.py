"""Downloads from a local HTTP server only: checksum, atomic rename, errors, MNIST mirrors."""

import functools
import gzip
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest

import convkit.data.datasets as datasets
from convkit.data import DataError, DownloadError, download, load, write_idx


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """``(root, base_url)``: files written under ``root`` are served at ``base_url``."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_good_checksum_keeps_the_file(server, tmp_path):
    root, url = server
    data = np.random.default_rng(0).bytes(3_000_000)  # several read chunks
    (root / "f.bin").write_bytes(data)
    dest = tmp_path / "cache" / "sub" / "f.bin"
    assert download(url + "f.bin", dest, sha256(data)) == dest
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["f.bin"]


def test_bad_checksum_leaves_nothing(server, tmp_path):
    root, url = server
    (root / "f.bin").write_bytes(b"tampered")
    dest_dir = tmp_path / "cache"
    expected = "0" * 64
    with pytest.raises(ValueError) as info:
        download(url + "f.bin", dest_dir / "f.bin", expected)
    message = str(info.value)
    assert url + "f.bin" in message and expected in message and sha256(b"tampered") in message
    assert list(dest_dir.iterdir()) == []


def test_bad_checksum_keeps_an_existing_file(server, tmp_path):
    root, url = server
    (root / "f.bin").write_bytes(b"new")
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    with pytest.raises(ValueError, match="SHA-256"):
        download(url + "f.bin", dest, sha256(b"something else"))
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir() if p.name != "served"] == ["f.bin"]


def test_missing_url_is_a_clear_error(server, tmp_path):
    _, url = server
    with pytest.raises(DownloadError, match=r"missing.bin failed: HTTP 404"):
        download(url + "missing.bin", tmp_path / "d" / "missing.bin", "0" * 64)
    assert list((tmp_path / "d").iterdir()) == []


def test_unreachable_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=rf"127.0.0.1:{port}/x failed"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", "0" * 64, timeout=5)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url, digest, match", [
    ("ftp://example.org/x", "0" * 64, r"url must start with http:// or https://, got 'ftp://example.org/x'"),
    ("file:///etc/hostname", "0" * 64, r"url must start with http"),
    ("http://127.0.0.1:9/x", "abc", r"sha256 must be 64 hexadecimal digits, got 'abc'"),
    ("http://127.0.0.1:9/x", None, r"sha256 must be 64 hexadecimal digits, got None"),
])
def test_bad_arguments(tmp_path, url, digest, match):
    with pytest.raises(ValueError, match=match):
        download(url, tmp_path / "x", digest)


def fake_mnist_files(root, n=6):
    """The four MNIST .gz files with ``n`` train and ``n - 2`` test images; returns their SHA-256."""
    rng = np.random.default_rng(1)
    for prefix, count in (("train", n), ("t10k", n - 2)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, count, dtype=np.uint8))
    return {p.name: sha256(p.read_bytes()) for p in root.iterdir()}


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("CONVKIT_DATA", raising=False)
    monkeypatch.setenv("CONVKIT_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_load_downloads_trying_each_mirror(server, tmp_path, monkeypatch, isolated, name):
    root, url = server
    (root / "good").mkdir()
    (root / "corrupt").mkdir()
    digests = fake_mnist_files(root / "good")
    for file_name in digests:  # a mirror serving damaged files
        (root / "corrupt" / file_name).write_bytes(gzip.compress(b"damaged"))
    monkeypatch.setitem(datasets.SHA256, name, digests)
    monkeypatch.setitem(datasets.MIRRORS, name, (url + "absent/", url + "corrupt/", url + "good/"))
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})
    test = load(name, "test", download=True)
    assert test.images.shape == (4, 28, 28) and test.name == name and test.split == "test"
    cached = tmp_path / "cache" / name
    assert sorted(p.name for p in cached.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    # found in the cache now, without downloading
    monkeypatch.setitem(datasets.MIRRORS, name, ())
    assert len(load(name, "test")) == 4


def test_load_download_into_data_dir(server, tmp_path, monkeypatch, isolated):
    root, url = server
    monkeypatch.setitem(datasets.SHA256, "mnist", fake_mnist_files(root))
    monkeypatch.setitem(datasets.MIRRORS, "mnist", (url,))
    train = load("mnist", data_dir=tmp_path / "mine", download=True)
    assert len(train) == 6
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


@pytest.mark.parametrize("name, title", [("mnist", "MNIST"), ("fashion-mnist", "Fashion-MNIST")])
def test_load_all_mirrors_failing_says_so_and_keeps_nothing(server, tmp_path, monkeypatch, isolated, name, title):
    _, url = server
    monkeypatch.setitem(datasets.MIRRORS, name, (url + "a/", url + "b/"))
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})
    with pytest.raises(DataError) as info:
        load(name, download=True)
    message = str(info.value)
    assert f"could not download {title} file train-images-idx3-ubyte.gz from any mirror (offline?)" in message
    assert url + "a/train-images-idx3-ubyte.gz failed: HTTP 404" in message
    assert url + "b/train-images-idx3-ubyte.gz failed: HTTP 404" in message
    assert not (tmp_path / "cache" / name).exists() or not any((tmp_path / "cache" / name).iterdir())


def test_the_tables_cover_the_four_files_of_each_dataset():
    names = {f"{prefix}-{kind}-ubyte.gz" for prefix in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")}
    for name in ("mnist", "fashion-mnist"):
        assert set(datasets.SHA256[name]) == names
        assert all(len(d) == 64 and int(d, 16) >= 0 for d in datasets.SHA256[name].values())
        assert all(m.endswith("/") for m in datasets.MIRRORS[name])
    assert datasets.MIRRORS["mnist"][0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert datasets.MIRRORS["fashion-mnist"][0].startswith("https://raw.githubusercontent.com/zalandoresearch/")
