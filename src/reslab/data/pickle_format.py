"""The official `cifar-10-python.tar.gz` format: five pickled training batches and a test batch.

Our own reader rather than torchvision's class, which refuses any file whose checksum is not the
official one (so it cannot read the synthetic archives the tests write). The writer produces the
same layout, so the tests exercise the real reading path.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from reslab.data.arrays import CIFAR10_CLASSES, CifarArrays

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"


def _unpickle(raw: bytes) -> dict:
    return pickle.loads(raw, encoding="bytes")


def _to_arrays(batches: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    data = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
    labels = np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in batches])
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


def _assemble(read) -> CifarArrays:
    train_x, train_y = _to_arrays([_unpickle(read(name)) for name in TRAIN_BATCHES])
    test_x, test_y = _to_arrays([_unpickle(read(TEST_BATCH))])
    try:
        meta = _unpickle(read(META))
        classes = tuple(c.decode() for c in meta[b"label_names"])
    except KeyError:
        classes = CIFAR10_CLASSES
    return CifarArrays(train_x, train_y, test_x, test_y, classes).check()


def read_archive(path: Path) -> CifarArrays:
    with tarfile.open(path, "r:*") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

        def read(name: str) -> bytes:
            if name not in members:
                raise KeyError(name)
            return tar.extractfile(members[name]).read()

        return _assemble(read)


def read_folder(path: Path) -> CifarArrays:
    path = Path(path)
    if (path / FOLDER).is_dir():
        path = path / FOLDER

    def read(name: str) -> bytes:
        f = path / name
        if not f.is_file():
            raise KeyError(name)
        return f.read_bytes()

    return _assemble(read)


def is_pickle_folder(path: Path) -> bool:
    return (path / TRAIN_BATCHES[0]).is_file() or (path / FOLDER / TRAIN_BATCHES[0]).is_file()


def write_archive(path: Path, data: CifarArrays) -> Path:
    """Write `data` as an official-format archive (train split into five equal batches)."""

    def batch(x: torch.Tensor, y: torch.Tensor, label: str) -> bytes:
        obj = {
            b"batch_label": label.encode(),
            b"labels": [int(v) for v in y],
            b"data": x.reshape(len(x), -1).numpy(),
            b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(x))],
        }
        return pickle.dumps(obj, protocol=2)

    files = {}
    for i, chunk in enumerate(torch.arange(len(data.train_x)).chunk(5)):
        files[TRAIN_BATCHES[i]] = batch(data.train_x[chunk], data.train_y[chunk], f"training batch {i + 1} of 5")
    files[TEST_BATCH] = batch(data.test_x, data.test_y, "testing batch 1 of 1")
    files[META] = pickle.dumps(
        {
            b"label_names": [c.encode() for c in data.classes],
            b"num_cases_per_batch": len(data.train_x) // 5,
            b"num_vis": 3072,
        },
        protocol=2,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path
