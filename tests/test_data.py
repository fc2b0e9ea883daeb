"""Reading CIFAR-10: the official pickle format, image-folder trees, the cache, the on-device loader."""

from __future__ import annotations

import tarfile
import time

import pytest
import torch

from reslab.data import DeviceLoader, load_cifar10, pickle_format, synthetic
from reslab.data.arrays import stratified_subset
from reslab.data.loader import Normalizer, random_crop_flip, split_arrays
from reslab.errors import ReslabError


def test_official_archive_round_trips(tmp_path):
    data = synthetic.make(n_train=100, n_test=20, seed=1)
    path = pickle_format.write_archive(tmp_path / "cifar-10-python.tar.gz", data)
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
    assert {f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)} <= names
    assert "cifar-10-batches-py/test_batch" in names
    back = pickle_format.read_archive(path)
    assert torch.equal(back.train_x, data.train_x) and torch.equal(back.train_y, data.train_y)
    assert torch.equal(back.test_x, data.test_x) and torch.equal(back.test_y, data.test_y)
    assert back.classes[0] == "airplane" and len(back.classes) == 10


def test_extracted_official_folder_reads_like_the_archive(tmp_path, synth_archive):
    with tarfile.open(synth_archive) as tar:
        tar.extractall(tmp_path, filter="data")
    a = load_cifar10(str(tmp_path), tmp_path / "cache")
    b = load_cifar10(str(synth_archive), tmp_path / "cache")
    assert a.meta["format"] == b.meta["format"] == "pickle"
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)


@pytest.mark.parametrize("packed", [False, True])
def test_image_folder_tree_keeps_pixels_and_labels(tmp_path, packed):
    data = synthetic.make(n_train=40, n_test=20, seed=2)
    root = synthetic.write_image_folder(tmp_path / "tree", data)  # PNG: lossless
    source = root
    if packed:
        source = tmp_path / "tree.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(root, arcname="cifar10")
    got = load_cifar10(str(source), tmp_path / "cache")
    assert got.meta["format"] == "image-folder"
    assert got.classes == data.classes
    # Files are read in sorted (class, name) order; compare as multisets per class.
    for split in ("train", "test"):
        x, y = getattr(got, f"{split}_x"), getattr(got, f"{split}_y")
        ref_x, ref_y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
        assert x.shape == ref_x.shape and x.dtype == torch.uint8
        for c in range(10):
            a = sorted(t.sum().item() for t in x[y == c])
            b = sorted(t.sum().item() for t in ref_x[ref_y == c])
            assert a == b


def test_decoded_data_is_cached_by_checksum(tmp_path, synth_archive, monkeypatch):
    cache = tmp_path / "cache"
    first = load_cifar10(str(synth_archive), cache)
    assert len(list(cache.glob("cifar10-*.pt"))) == 1

    def no_decoding(*a, **k):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr("reslab.data.source._read", no_decoding)
    t0 = time.perf_counter()
    second = load_cifar10(str(synth_archive), cache)
    assert time.perf_counter() - t0 < 1.0
    assert torch.equal(first.train_x, second.train_x)
    assert second.meta["checksum"] == first.meta["checksum"]


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(ReslabError, match="does not exist.*DATA="):
        load_cifar10(str(tmp_path / "nope.tar.gz"), tmp_path / "cache")


def test_no_source_and_no_network_says_how_to_pass_data(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(ReslabError, match="download failed.*DATA="):
        load_cifar10(None, tmp_path / "cache")


def test_corrupt_archive_is_a_clear_error(tmp_path, synth_archive):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(synth_archive.read_bytes()[:5000])
    with pytest.raises(ReslabError, match="corrupt|cannot read"):
        load_cifar10(str(bad), tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.pt")), "nothing half-written may be cached"


def test_augmentation_keeps_shapes_and_labels_aligned():
    # Each image is constant with value = its label, so after any crop/flip its centre still says the label.
    y = torch.arange(64) % 10
    x = (y.view(-1, 1, 1, 1) * 20).expand(-1, 3, 32, 32).to(torch.uint8).contiguous()
    norm = Normalizer(torch.zeros(3, 1, 1), torch.ones(3, 1, 1) / 255)  # identity on the uint8 scale
    loader = DeviceLoader(x, y, norm, batch_size=16, train=True, seed=3, channels_last=True)
    seen = 0
    for xb, yb in loader:
        assert xb.shape == (16, 3, 32, 32) and xb.dtype == torch.float32
        assert xb.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(xb[:, 0, 16, 16], yb.float() * 20, atol=1e-3)
        seen += len(yb)
    assert seen == 64


def test_crop_and_flip_move_pixels_as_the_paper_says():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    out = random_crop_flip(x, pad=4, flip=True, g=g)
    assert out.shape == x.shape
    # Every output row is a (possibly mirrored, possibly shifted) contiguous run of an input row or zeros.
    assert ((out == 0) | torch.isin(out, x)).all()
    # Padding 0 and no flip is the identity.
    assert torch.equal(random_crop_flip(x, pad=0, flip=False, g=g), x)


def test_epochs_shuffle_differently_but_reproducibly():
    x = torch.zeros(40, 3, 32, 32, dtype=torch.uint8)
    y = torch.arange(40)
    norm = Normalizer(torch.zeros(3, 1, 1), torch.ones(3, 1, 1))

    def orders(seed):
        loader = DeviceLoader(x, y, norm, 40, train=True, seed=seed)
        return [next(iter(loader))[1].tolist() for _ in range(2)]

    a, b = orders(0), orders(0)
    assert a == b and a[0] != a[1]


def test_stratified_subset_is_class_balanced():
    y = torch.arange(1000) % 10
    idx = stratified_subset(y, 200, seed=0)
    assert len(idx) == 200 and torch.bincount(y[idx]).tolist() == [20] * 10


def test_val_split_holds_out_a_tenth_of_training():
    data = synthetic.make(n_train=500, n_test=100)
    tx, ty, ex, ey, name = split_arrays(data, "val", None, None)
    assert (len(tx), len(ex), name) == (450, 50, "val")
    with pytest.raises(ReslabError, match="valid choices: test, val"):
        split_arrays(data, "train", None, None)


def test_pixel_mean_normalisation_centres_the_training_set():
    data = synthetic.make(n_train=200, n_test=10)
    norm = Normalizer.fit(data.train_x, "pixel_mean")
    assert norm(data.train_x).mean(0).abs().max() < 1e-4
    ch = Normalizer.fit(data.train_x, "channel")
    z = ch(data.train_x)
    assert torch.allclose(z.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(z.std((0, 2, 3)), torch.ones(3), atol=1e-3)
