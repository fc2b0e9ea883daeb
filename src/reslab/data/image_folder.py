"""Image-folder trees `train/<class>/*`, `test/<class>/*`, as a folder or a .tar(.gz).

Class indices follow the sorted class-folder names, which for CIFAR-10 is also the official
label order. Files are read in sorted order so that the decoded tensors (and their checksum-keyed
cache) are the same on every machine.
"""

from __future__ import annotations

import functools
import io
import tarfile
import warnings
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from reslab.data.arrays import CIFAR10_CLASSES, CifarArrays


@functools.cache
def _torchvision_decoder():
    """torchvision's decoder, or None: it is fast, but deprecated from 0.29 on, so Pillow is the fallback. Imported on
    first use, not with this module: torchvision's import (its models and ops) costs a run's process a tenth of a
    second or more, and only a cold cache decodes anything."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchvision.io import ImageReadMode, decode_image
    except ImportError:  # pragma: no cover
        return None
    return lambda data: decode_image(data, mode=ImageReadMode.RGB)


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
SPLITS = ("train", "test")


class BadImageFolder(ValueError):
    """An image-folder tree that is not a CIFAR-10 copy (its message names the split, class or file)."""


def _decode(raw: bytes) -> torch.Tensor:
    decode_image = _torchvision_decoder()
    if decode_image is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            img = decode_image(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
    else:
        from PIL import Image

        img = torch.from_numpy(np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))).permute(2, 0, 1).contiguous()
    if tuple(img.shape) != (3, 32, 32):
        raise ValueError(f"expected 32x32 RGB images, got shape {tuple(img.shape)}")
    return img


def _split_entries(names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Map split -> sorted [(class, member name)] from paths like [prefix/]split/class/file."""
    out: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
    for name in names:
        parts = PurePosixPath(name).parts
        if len(parts) < 3 or PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        split, cls = parts[-3], parts[-2]
        if split in out:
            out[split].append((cls, name))
    for split in SPLITS:
        out[split].sort()
    return out


def _check_classes(entries: dict[str, list[tuple[str, str]]]) -> list[str]:
    """Both splits must hold the same 10 class folders: a missing class would silently change the task."""
    found = {split: sorted({cls for cls, _ in entries[split]}) for split in SPLITS}
    if not found["train"] or not found["test"]:
        raise BadImageFolder("no train/<class>/<image> and test/<class>/<image> files found")
    for split, other in (("train", "test"), ("test", "train")):
        missing = sorted(set(found[other]) - set(found[split]))
        if missing:
            raise BadImageFolder(
                f"{split}/ lacks the classes {missing} that {other}/ has; valid: the same "
                f"{len(CIFAR10_CLASSES)} class folders in train/ and test/"
            )
    if len(found["train"]) != len(CIFAR10_CLASSES):
        raise BadImageFolder(
            f"{len(found['train'])} class folders {found['train']}; valid: CIFAR-10's "
            f"{len(CIFAR10_CLASSES)} ({', '.join(CIFAR10_CLASSES)})"
        )
    return found["train"]


def _decode_named(name: str, raw: bytes) -> torch.Tensor:
    try:
        return _decode(raw)
    except (ValueError, RuntimeError) as err:
        raise BadImageFolder(f"image {name!r}: {err}") from None


def _assemble(entries: dict[str, list[tuple[str, str]]], read) -> CifarArrays:
    classes = _check_classes(entries)
    index = {c: i for i, c in enumerate(classes)}
    tensors = {}
    for split in SPLITS:
        x = torch.stack([_decode_named(name, read(name)) for _, name in entries[split]])
        y = torch.tensor([index[cls] for cls, _ in entries[split]], dtype=torch.int64)
        tensors[split] = (x, y)
    return CifarArrays(*tensors["train"], *tensors["test"], classes=tuple(classes)).check()


def read_archive(path: Path) -> CifarArrays:
    # One sequential pass: seeking back in a gzip stream restarts it, so reading members in
    # sorted (not stored) order would be quadratic.
    files = {}
    with tarfile.open(path, "r|*") as tar:
        for m in tar:
            if m.isfile() and PurePosixPath(m.name).suffix.lower() in IMAGE_SUFFIXES:
                files[m.name] = tar.extractfile(m).read()
    return _assemble(_split_entries(list(files)), files.__getitem__)


def read_folder(path: Path) -> CifarArrays:
    root = Path(path)
    names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    return _assemble(_split_entries(names), lambda n: (root / n).read_bytes())


def is_image_folder(path: Path) -> bool:
    path = Path(path)
    candidates = [path] + [p for p in path.iterdir() if p.is_dir()] if path.is_dir() else []
    return any((c / "train").is_dir() and (c / "test").is_dir() for c in candidates)


def archive_layout(path: Path) -> str | None:
    """'pickle', 'image-folder' or None, from the member names of a tar archive."""
    with tarfile.open(path, "r:*") as tar:
        names = tar.getnames()
    if any(PurePosixPath(n).name == "data_batch_1" for n in names):
        return "pickle"
    entries = _split_entries(names)
    if entries["train"] and entries["test"]:
        return "image-folder"
    return None
