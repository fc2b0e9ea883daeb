"""The ImageNet ResNets (He et al. 2016, Table 1) have torchvision's parameters, and multiply-adds that depend on
where a bottleneck puts its stride: pinned for both placements, and counted against torchvision's own builders.

Reference: torchvision 0.29.1 (torchvision/models/resnet.py, the installed package), whose resnet18..resnet152 are
"ResNet v1.5" (stride on the bottleneck's 3x3; its docs: "The bottleneck of TorchVision places the stride for
downsampling to the second 3x3 convolution while the original paper places it to the first 1x1 convolution").
The paper's placement was read in the authors' released net, KaimingHe/deep-residual-networks @ 872cc54,
prototxt/ResNet-101-deploy.prototxt: res3a_branch2a (1x1) and res3a_branch1 (projection) have stride 2,
res3a_branch2b (3x3) stride 1. The pinned numbers below were computed by this code and equal torchvision's for
v1.5 (the test recomputes torchvision's): parameters = torchvision's `num_params`, MACs = its `_ops` ("GFLOPS")
to its 3 decimals. Every net is built on the meta device: shapes only, no arithmetic, so the test takes seconds.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn as nn
from hydra import compose, initialize_config_dir

from reslab.errors import ReslabError
from reslab.models import build
from reslab.paths import CONF_DIR, ROOT
from reslab.report import imagenet, published
from reslab.summary import count_flops, count_params, summarize

tvm = pytest.importorskip("torchvision.models")

# depth: (params, MACs with the stride on the first 1x1 (paper), MACs with it on the 3x3 (v1.5)) at 3x224x224
PINNED = {
    18: (11_689_512, 1_814_073_344, 1_814_073_344),
    34: (21_797_672, 3_663_761_408, 3_663_761_408),
    50: (25_557_032, 3_857_973_248, 4_089_184_256),
    101: (44_549_160, 7_570_194_432, 7_801_405_440),
    152: (60_192_808, 11_282_415_616, 11_513_626_624),
}


@functools.lru_cache(maxsize=None)
def meta_net(depth: int, stride_at: str = "paper") -> nn.Module:
    with torch.device("meta"):
        return build("imagenet-resnet", depth=depth, stride_at=stride_at)


@functools.lru_cache(maxsize=None)
def torchvision_net(depth: int) -> nn.Module:
    with torch.device("meta"):
        return getattr(tvm, f"resnet{depth}")(weights=None)


def macs(model: nn.Module) -> int:
    return count_flops(model, 224) // 2


@pytest.mark.parametrize("depth", PINNED)
def test_params_are_the_same_for_both_placements_and_macs_are_pinned(depth):
    params, paper, v15 = PINNED[depth]
    a, b = meta_net(depth, stride_at="paper"), meta_net(depth, stride_at="v1.5")
    assert count_params(a) == count_params(b) == params
    assert (macs(a), macs(b)) == (paper, v15)


@pytest.mark.parametrize("depth", PINNED)
def test_v15_is_torchvisions_net_by_its_counts_and_its_published_figures(depth):
    theirs = torchvision_net(depth)
    ours = meta_net(depth, stride_at="v1.5")
    assert count_params(ours) == count_params(theirs)
    assert macs(ours) == macs(theirs)
    # torchvision's own figures for these nets (the weights' metadata; nothing is downloaded)
    meta = getattr(tvm, f"ResNet{depth}_Weights").IMAGENET1K_V1.meta
    assert count_params(ours) == meta["num_params"]
    assert round(macs(ours) / 1e9, 3) == meta["_ops"]


@pytest.mark.parametrize("depth", PINNED)
def test_every_parameter_tensor_has_torchvisions_shape_in_torchvisions_order(depth):
    theirs = torchvision_net(depth)
    for stride_at in imagenet.STRIDE_AT:
        ours = [tuple(p.shape) for p in meta_net(depth, stride_at=stride_at).parameters()]
        assert ours == [tuple(p.shape) for p in theirs.parameters()]


def strides(block: nn.Module) -> list[tuple[int, int]]:
    """(kernel side, stride) of each conv on a block's residual branch."""
    return [(m.kernel_size[0], m.stride[0]) for m in block.branch if isinstance(m, nn.Conv2d)]


def test_the_stride_sits_on_the_first_1x1_in_the_paper_and_on_the_3x3_in_v15():
    paper, v15 = meta_net(50, stride_at="paper"), meta_net(50, stride_at="v1.5")
    for stage in (1, 2, 3):
        assert strides(paper.stages[stage][0]) == [(1, 2), (3, 1), (1, 1)]
        assert strides(v15.stages[stage][0]) == [(1, 1), (3, 2), (1, 1)]
    assert strides(paper.stages[0][0]) == strides(v15.stages[0][0]) == [(1, 1), (3, 1), (1, 1)]
    # basic blocks have one place for it
    assert strides(meta_net(34, stride_at="paper").stages[1][0]) == [(3, 2), (3, 1)]


@pytest.mark.parametrize(
    "depth, blocks",
    [(18, [2, 2, 2, 2]), (34, [3, 4, 6, 3]), (50, [3, 4, 6, 3]), (101, [3, 4, 23, 3]), (152, [3, 8, 36, 3])],
)
def test_stages_are_table_1s(depth, blocks):
    net = meta_net(depth)
    assert [len(s) for s in net.stages] == blocks
    convs = sum(isinstance(m, nn.Conv2d) for m in net.stages.modules()) - 4 * (depth >= 50) - 3 * (depth < 50)
    assert convs + 2 == depth  # weighted layers: stem conv + branch convs (not projections) + fc
    assert net.fc.out_features == 1000


def test_a_224_image_reaches_the_last_stage_at_7x7_and_the_net_runs_at_other_sizes():
    net = meta_net(50)
    assert net.stages(net.stem(torch.zeros(1, 3, 224, 224, device="meta"))).shape == (1, 2048, 7, 7)
    with torch.no_grad():
        assert build("imagenet-resnet", depth=18).eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.parametrize(
    "opts, message",
    [
        ({"depth": 51}, "unknown model.depth 51; valid choices: 18, 34, 50, 101, 152"),
        ({"stride_at": "v1"}, "unknown model.stride_at 'v1'; valid choices: paper, v1.5"),
    ],
)
def test_bad_options_are_one_line(opts, message):
    with pytest.raises(ReslabError, match=message.replace(".", r"\.")):
        build("imagenet-resnet", **opts)


def test_summary_counts_at_the_input_size_of_the_model_config():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=imagenet-resnet", "model.depth=18"])
    line = summarize(cfg.model)
    assert line["input"] == [3, 224, 224]
    assert (line["params"], line["macs"]) == PINNED[18][:2] and line["flops"] == 2 * line["macs"]
    assert line["stride_at"] == "paper"
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cifar = compose("train", overrides=["model=resnet"])
    assert summarize(cifar.model)["input"] == [3, 32, 32]  # configs without input_size: CIFAR's 32


def test_the_papers_table_1_rows_have_their_source():
    pub = published.load()
    rows = pub[(pub.dataset == "ImageNet") & (pub.metric == "macs_g")]
    assert sorted(rows.depth.astype(int)) == sorted(PINNED)
    assert (rows.source == "He2016-ResNet").all() and (rows.table == "Table 1").all()
    assert rows.note.str.contains("multiply-adds").all()


def test_the_report_sets_both_placements_beside_the_paper_and_the_committed_one_is_current(tmp_path):
    t = imagenet.table()
    assert list(t.depth) == list(PINNED)
    assert [tuple(r) for r in t[["params", "macs_paper", "macs_v1.5"]].itertuples(index=False)] == list(PINNED.values())
    assert list(t.published_gmacs) == [1.8, 3.6, 3.8, 7.6, 11.3]
    text = imagenet.build(reports=tmp_path).read_text()
    assert "multiply-adds" in text and "He2016-ResNet Table 1" in text
    table = imagenet.markdown(t)
    assert table in text
    # reports/imagenet/README.md is generated by `reslab-report imagenet`: its table must be this code's.
    assert table in (ROOT / "reports" / "imagenet" / "README.md").read_text()
