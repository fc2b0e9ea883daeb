"""Where CIFAR-10 comes from, and the decoded-tensor cache keyed by the source's checksum.

Order: an explicit source (the user's DATA); else an archive already in the cache directory;
else the official download, whose published MD5 is checked before anything is read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tarfile
import time
import urllib.request
import zlib
from pathlib import Path

import torch

import reslab.data.image_folder as image_folder  # the submodules, not the package: reslab.data imports this module
import reslab.data.pickle_format as pickle_format
from reslab import io
from reslab.data.arrays import CifarArrays
from reslab.errors import ReslabError

log = logging.getLogger(__name__)

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
OFFICIAL_NAME = "cifar-10-python.tar.gz"
CACHE_FORMAT = 3  # bump when the cached tensors' layout changes (3: the arrays' SHA-256 stored with them)
TRUNCATED = ("unexpected end of data", "end-of-stream marker", "compressed file ended")

HOW_TO_PASS = (
    "pass DATA=<path> (make) or data.source=<path> (reslab-train): the official "
    f"{OFFICIAL_NAME} or its extracted folder, or an image-folder tree train/<class>/*, "
    "test/<class>/* as a folder or .tar.gz"
)


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_fingerprint(path: Path) -> str:
    """A cheap identity for an extracted folder: relative paths, sizes and mtimes, hashed."""
    h = hashlib.md5()
    for p in sorted(Path(path).rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def unreadable(path: Path, err: BaseException) -> ReslabError:
    """One line for an archive that cannot be read, saying 'truncated' when it ends early (a partial download or
    copy)."""
    if isinstance(err, EOFError) or any(t in str(err).lower() for t in TRUNCATED):
        size = path.stat().st_size if path.is_file() else 0
        return ReslabError(
            f"truncated archive {str(path)!r}: it ends after {size:,} bytes, before its last member "
            f"(corrupt, e.g. a partial download or copy; {type(err).__name__}: {err}); {HOW_TO_PASS}"
        )
    return ReslabError(f"corrupt or unreadable archive {str(path)!r} ({type(err).__name__}: {err}); {HOW_TO_PASS}")


def arrays_sha256(blob: dict) -> str:
    """SHA-256 of the decoded arrays and class names: what the cache must still hold when it is read back."""
    h = hashlib.sha256()
    for k in ("train_x", "train_y", "test_x", "test_y"):
        t = blob[k].contiguous()
        h.update(f"{k}:{t.dtype}:{tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())
    h.update(json.dumps([list(blob["classes"]), blob["format"]]).encode())
    return h.hexdigest()


def detect_format(path: Path) -> str:
    if path.is_dir():
        if pickle_format.is_pickle_folder(path):
            return "pickle"
        if image_folder.is_image_folder(path):
            return "image-folder"
        raise ReslabError(
            f"data source {str(path)!r} is a folder but neither the official layout nor an image-folder tree; "
            f"{HOW_TO_PASS}"
        )
    try:
        layout = image_folder.archive_layout(path)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise unreadable(path, err) from None
    if layout is None:
        raise ReslabError(
            f"archive {str(path)!r} holds neither the official CIFAR-10 batches nor train/ and test/ image folders; "
            f"{HOW_TO_PASS}"
        )
    return layout


def download_official(cache_dir: Path) -> Path:
    target = cache_dir / OFFICIAL_NAME
    log.info("downloading %s", OFFICIAL_URL)
    try:
        with urllib.request.urlopen(OFFICIAL_URL, timeout=30) as resp:
            data = resp.read()
    except OSError as err:
        raise ReslabError(f"no CIFAR-10 found and the download failed ({err}); {HOW_TO_PASS}") from None
    digest = hashlib.md5(data).hexdigest()
    if digest != OFFICIAL_MD5:
        raise ReslabError(f"downloaded {OFFICIAL_NAME} has MD5 {digest}, expected {OFFICIAL_MD5}; nothing was kept")
    io.write_bytes(target, data)
    return target


def resolve(source: str | None, cache_dir: Path, download: bool = True) -> Path:
    if source not in (None, "", "null"):
        path = Path(source).expanduser()
        if not path.exists():
            raise ReslabError(f"data source {source!r} does not exist; {HOW_TO_PASS}")
        return path.resolve()
    cached = Path(cache_dir) / OFFICIAL_NAME
    if cached.is_file():
        return cached
    if not download:
        raise ReslabError(f"no data source given and no {OFFICIAL_NAME} in cache {str(cache_dir)!r}; {HOW_TO_PASS}")
    return download_official(Path(cache_dir))


def _read(path: Path, fmt: str) -> CifarArrays:
    reader = {
        ("pickle", False): pickle_format.read_archive,
        ("pickle", True): pickle_format.read_folder,
        ("image-folder", False): image_folder.read_archive,
        ("image-folder", True): image_folder.read_folder,
    }[(fmt, path.is_dir())]
    try:
        return reader(path)
    except ReslabError:
        raise
    except image_folder.BadImageFolder as err:
        raise ReslabError(f"image folder {str(path)!r} refused: {err}; {HOW_TO_PASS}") from None
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise unreadable(path, err) from None
    except (OSError, KeyError, ValueError, RuntimeError) as err:
        raise ReslabError(
            f"cannot read {fmt} data at {str(path)!r} ({type(err).__name__}: {err}); {HOW_TO_PASS}"
        ) from None


def describe_copy(fmt: str, checksum: str) -> str:
    if checksum == OFFICIAL_MD5:
        return "official CIFAR-10 (cifar-10-python.tar.gz, MD5 verified)"
    if fmt == "pickle":
        return "CIFAR-10 in the official pickle format (not the official file: MD5 differs)"
    return "image-folder copy of CIFAR-10 (re-encoded pixels, not comparable to the official files)"


def load_cifar10(source: str | None, cache_dir: str | Path, download: bool = True) -> CifarArrays:
    """Decoded CIFAR-10; the first load of a source decodes it, later loads read the cache."""
    cache_dir = Path(cache_dir).expanduser()
    path = resolve(source, cache_dir, download)
    checksum = folder_fingerprint(path) if path.is_dir() else md5sum(path)
    cache = cache_dir / f"cifar10-{checksum}-v{CACHE_FORMAT}.pt"
    if cache.is_file():
        try:
            blob = torch.load(cache, map_location="cpu", weights_only=True)
            # torch.load reads a flipped bit in the arrays without complaint; the checksum does not.
            if blob.get("sha256") != arrays_sha256(blob):
                raise ValueError("the arrays' SHA-256 differs from the one stored with them")
            meta = {
                "source": str(path),
                "format": blob["format"],
                "checksum": checksum,
                "copy": describe_copy(blob["format"], checksum),
            }
            return CifarArrays(
                blob["train_x"], blob["train_y"], blob["test_x"], blob["test_y"], tuple(blob["classes"]), meta
            ).check()
        except Exception as err:  # a damaged cache is rebuilt, not trusted
            log.warning("ignoring unreadable cache %s (%s)", cache, err)
    fmt = detect_format(path)
    t0 = time.perf_counter()
    arrays = _read(path, fmt)
    arrays.meta = {"source": str(path), "format": fmt, "checksum": checksum, "copy": describe_copy(fmt, checksum)}
    blob = {
        "train_x": arrays.train_x,
        "train_y": arrays.train_y,
        "test_x": arrays.test_x,
        "test_y": arrays.test_y,
        "classes": list(arrays.classes),
        "format": fmt,
    }
    blob["sha256"] = arrays_sha256(blob)
    io.save_torch(cache, blob)
    log.info("decoded %s (%s) in %.1fs; cached at %s", path, fmt, time.perf_counter() - t0, cache)
    return arrays
