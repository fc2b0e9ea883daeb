"""reslab's fast paths compute what the simple path a user writes computes:
- the augmentation: DeviceLoader's crop offsets and flips are drawn uniformly, as torchvision's RandomCrop(32,
  padding=4) and RandomHorizontalFlip draw them (chi-square tests, alpha = 0.001 each, over 8,100 draws);
- the loss: on the same images with the same draws, DeviceLoader's batch (normalised, padded, cropped, flipped on the
  device, channels_last) gives the loss that torchvision's transforms and an NCHW model give;
- the update: one step of reslab's Classifier in its Lightning Trainer moves every parameter and BN statistic as a
  plain torch SGD loop does (CPU, fp32);
- the evaluation batch (trainer.eval_batch_size=auto: 50 on a CPU, 500 on a GPU): the final evaluation and the Fig. 7
  responses of a trained net are the same at batch 50 as at 500, up to float rounding (rtol 1e-5; every prediction
  equal).
The draws are seeded, so each test gives the same p-values every time; alpha is what a true difference would have
to beat, and the power check below shows that a sampler missing one offset fails it.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from omegaconf import OmegaConf
from scipy.stats import chi2_contingency, chisquare
from torchvision import transforms

from reslab.bench.baseline import ArrayCIFAR
from reslab.data import DeviceLoader
from reslab.data.loader import Normalizer, crop_flip_draws
from reslab.models import build_model
from reslab.training.module import Classifier
from reslab.training.recipe import Recipe
from reslab.training.trainer import make_trainer

ALPHA = 0.001
PAD = 4
DRAWS = 8100  # 100 expected per (row, column) offset pair
TINY = {"name": "resnet", "depth": 8, "widths": [4, 8, 16]}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def coordinate_image() -> np.ndarray:
    """A 32x32 HWC uint8 image whose red channel is its row + 1 and green its column + 1 (0 only in the padding)."""
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    return np.stack([rows + 1, cols + 1, np.zeros_like(rows)], axis=-1).astype(np.uint8)


def decode(batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row offset, column offset, mirrored) of each augmented coordinate image, values in [0, 1] units (N, 3, 32, 32).

    Output pixel (16, 16) is source row oy + 12, source column ox + 12 (or ox + 11 when mirrored; the crop is taken
    from the padded image, offsets 0..2*PAD); a mirrored image's columns run backwards."""
    v = (batch[:, :2] * 255).round().long()
    mirrored = (v[:, 1, 16, 17] - v[:, 1, 16, 16]) < 0
    oy = v[:, 0, 16, 16] - 1 - (16 - PAD)
    ox = v[:, 1, 16, 16] - 1 - (16 - PAD) + mirrored.long()
    return oy.numpy(), ox.numpy(), mirrored.numpy()


def reslab_draws() -> tuple:
    x = torch.from_numpy(coordinate_image()).permute(2, 0, 1).expand(DRAWS, 3, 32, 32)
    identity = Normalizer(torch.zeros(3, 1, 1), torch.ones(3, 1, 1))
    loader = DeviceLoader(x, torch.zeros(DRAWS, dtype=torch.long), identity, 900, train=True, seed=0, pad=PAD)
    return tuple(np.concatenate(parts) for parts in zip(*(decode(xb) for xb, _ in loader)))


def torchvision_draws() -> tuple:
    torch.manual_seed(0)
    aug = transforms.Compose(
        [transforms.RandomCrop(32, padding=PAD), transforms.RandomHorizontalFlip(), transforms.ToTensor()]
    )
    data = ArrayCIFAR(np.broadcast_to(coordinate_image(), (DRAWS, 32, 32, 3)), np.zeros(DRAWS, dtype=np.int64), aug)
    return decode(torch.stack([data[i][0] for i in range(DRAWS)]))


def offset_counts(oy, ox) -> np.ndarray:
    assert oy.min() >= 0 and ox.min() >= 0 and oy.max() <= 2 * PAD and ox.max() <= 2 * PAD, "offsets within 0..8"
    return np.bincount(oy * (2 * PAD + 1) + ox, minlength=(2 * PAD + 1) ** 2)


def test_deviceloader_draws_crop_offsets_and_flips_uniformly_as_torchvision_does():
    oy, ox, mirrored = reslab_draws()
    ours = offset_counts(oy, ox)
    assert chisquare(ours).pvalue > ALPHA, "the 81 (row, column) offsets are uniform"
    assert chisquare(np.bincount(mirrored, minlength=2)).pvalue > ALPHA, "half the images are mirrored"
    tv_oy, tv_ox, tv_mirrored = torchvision_draws()
    theirs = offset_counts(tv_oy, tv_ox)
    assert chi2_contingency(np.stack([ours, theirs])).pvalue > ALPHA, (
        "reslab's offsets are distributed as torchvision's"
    )
    assert (
        chi2_contingency(np.stack([np.bincount(mirrored, minlength=2), np.bincount(tv_mirrored, minlength=2)])).pvalue
        > ALPHA
    )


def test_the_uniformity_test_has_the_power_to_see_a_missing_offset():
    # A sampler that never draws offset 8 (a classic off-by-one) fails at the same alpha and number of draws.
    rng = np.random.default_rng(0)
    biased = offset_counts(rng.integers(0, 2 * PAD, DRAWS), rng.integers(0, 2 * PAD + 1, DRAWS))
    assert chisquare(biased).pvalue < ALPHA


@pytest.mark.parametrize("normalize", ["pixel_mean", "channel"])
def test_reslab_batches_give_the_loss_of_torchvision_transforms_on_the_same_draws(normalize):
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (64,), generator=g)
    norm = Normalizer.fit(images, normalize)
    xb, yb = next(iter(DeviceLoader(images, labels, norm, 16, train=True, seed=3, pad=PAD, channels_last=True)))

    # The same random numbers DeviceLoader draws for its first batch of epoch 0: the shuffle, then the crops and flips.
    g = torch.Generator().manual_seed(3 * 1_000_003 + 0)
    order = torch.randperm(64, generator=g)[:16]
    oy, ox, mirrored = crop_flip_draws(16, PAD, True, g, "cpu")
    simple = []
    for i, top, left, flip in zip(order.tolist(), oy.tolist(), ox.tolist(), mirrored.tolist()):
        # Normalised before the padding, as reslab (and fb.resnet.torch) does: the padding is the mean image.
        t = TF.normalize(TF.to_tensor(images[i].permute(1, 2, 0).numpy()), norm.mean, norm.std)
        t = TF.crop(TF.pad(t, PAD, fill=0), top, left, 32, 32)
        simple.append(TF.hflip(t) if flip else t)
    simple = torch.stack(simple)
    assert torch.equal(yb, labels[order])
    assert xb.is_contiguous(memory_format=torch.channels_last) and simple.is_contiguous()
    torch.testing.assert_close(xb, simple, rtol=0, atol=1e-6)

    torch.manual_seed(0)
    model = build_model(TINY)
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    loss_fast = F.cross_entropy(fast(xb).float(), yb)
    loss_simple = F.cross_entropy(model(simple), labels[order])
    torch.testing.assert_close(loss_fast, loss_simple, rtol=1e-5, atol=1e-6)


class OneBatch:
    """An iterable of one batch, as DeviceLoader is an iterable of batches."""

    def __init__(self, x, y):
        self.batch = (x, y)

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield self.batch


def test_one_step_of_reslabs_classifier_updates_the_parameters_as_a_plain_sgd_loop():
    torch.manual_seed(0)
    model = build_model(TINY)
    plain = copy.deepcopy(model)
    init = copy.deepcopy(model.state_dict())
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)
    opt = dict(lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=False)

    # reslab: the Classifier, channels_last, in train.py's Trainer, one optimizer step.
    module = Classifier(model, Recipe(**opt, total_steps=100, milestones=(0.5,), gamma=0.1)).to(
        memory_format=torch.channels_last
    )
    cfg = OmegaConf.create({"trainer": {"deterministic": False}})
    trainer = make_trainer(cfg, "cpu", "32-true", 1, 1, 0, [])
    trainer.fit(module, train_dataloaders=OneBatch(x.contiguous(memory_format=torch.channels_last), y))
    assert trainer.global_step == 1

    # The plain loop: NCHW, torch.optim.SGD, one step.
    plain.train()
    sgd = torch.optim.SGD(plain.parameters(), **opt)
    sgd.zero_grad()
    F.cross_entropy(plain(x), y).backward()
    sgd.step()

    # Tolerance: channels_last and NCHW convolutions sum in another order (fp32 rounding, ~1e-7 relative); one step
    # of lr 0.1 moves a weight by ~1e-2, so 1e-5 absolute + 1e-4 relative is far below any real difference.
    ours, theirs = module.model.state_dict(), plain.state_dict()
    assert ours.keys() == theirs.keys()
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k], rtol=1e-4, atol=1e-5, msg=k)
    assert not torch.equal(theirs["stem.0.weight"], init["stem.0.weight"]), "the step moved the weights"
    assert not torch.equal(theirs["stem.1.running_mean"], init["stem.1.running_mean"]), "and the BN statistics"


def test_the_eval_batch_changes_evaluation_and_responses_by_float_rounding_only():
    from reslab.probes import layer_responses
    from reslab.training.evaluate import evaluate

    torch.manual_seed(0)
    model = build_model(OmegaConf.create(TINY))
    x, y = torch.randint(0, 256, (500, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (500,))
    norm = Normalizer.fit(x, "pixel_mean")
    with torch.no_grad():  # BN statistics of a net that has seen data, not the identity of a fresh one
        model.train()
        model(norm(x[:200]).float())
    small, large = (
        evaluate(model, DeviceLoader(x, y, norm, b, train=False, channels_last=True), "32-true") for b in (50, 500)
    )
    assert np.array_equal(small["predictions"], large["predictions"])
    assert small["test_loss"] == pytest.approx(large["test_loss"], rel=1e-5)
    assert small["test_error"] == large["test_error"]
    images = norm(x).contiguous(memory_format=torch.channels_last)
    calib = norm(x[:100])
    r50, r500 = (layer_responses(model, images, calib=calib, batch_size=b) for b in (50, 500))
    assert [r["name"] for r in r50] == [r["name"] for r in r500]
    for a, b in zip(r50, r500):
        assert a["std"] == pytest.approx(b["std"], rel=1e-5) and a["std_median"] == pytest.approx(
            b["std_median"], rel=1e-5
        )
