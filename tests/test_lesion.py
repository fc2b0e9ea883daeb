"""The lesion study's deletions do what Veit et al. 2016 describe: deleting a residual block keeps its shortcut (a
block whose branch outputs zero is unchanged by it), deleting a plain block skips it (the same net with that block
replaced by an identity), and a plain net's downsampling blocks cannot be deleted. The path lengths of n blocks are
C(n, k), and their gradient shares add up to one."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn as nn

from reslab.models import build_model
from reslab.probes import lesion


def net(**opts):
    torch.manual_seed(0)
    return build_model({"name": "resnet", "depth": 20, **opts}).eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(40, 3, 32, 32, generator=g), torch.randint(0, 10, (40,), generator=g)


def test_deleting_a_residual_block_keeps_its_shortcut(data):
    x, _ = data
    m = net(shortcut="A", zero_init_residual=True)  # every branch outputs exactly zero: deletion changes nothing
    with torch.no_grad():
        before = m(x)
        with lesion.deleted(m, [0, 3, 4, 8]):
            after = m(x)
    assert torch.equal(before, after)
    assert lesion.deletable(m) == list(range(9))  # downsampling blocks too: their option-A shortcut stays


def test_deleting_a_plain_block_skips_it_and_downsampling_ones_cannot_be_deleted(data):
    x, _ = data
    m = net(shortcut="none")
    with torch.no_grad():
        whole = m(x)
    assert lesion.deletable(m) == [0, 1, 2, 4, 5, 7, 8]  # blocks 3 and 6 halve the map and double the width
    skipped = copy.deepcopy(m)
    skipped.stages[1][1] = nn.Identity()  # block 4
    with torch.no_grad(), lesion.deleted(m, [4]):
        assert torch.equal(m(x), skipped(x))
    with pytest.raises(ValueError, match="cannot be skipped"), lesion.deleted(m, [3]):
        pass
    with torch.no_grad():
        assert torch.equal(m(x), whole) and not torch.equal(whole, skipped(x))  # the hooks are gone afterwards


@pytest.mark.slow
def test_single_and_random_deletions_are_one_row_each_and_reproducible(data):
    x, y = data
    m = net(shortcut="A")
    rows = lesion.single(m, x, y)
    assert [r["block"] for r in rows] == list(range(9)) and [r["downsampling"] for r in rows].count(True) == 2
    a = lesion.random_k(m, x, y, ks=range(1, 4), draws=3, seed=5)
    assert len(a) == 9 and a == lesion.random_k(m, x, y, ks=range(1, 4), draws=3, seed=5)
    assert all(len(r["deleted"].split()) == r["k"] for r in a)


@pytest.mark.slow
def test_path_lengths_count_every_path_and_their_gradient_shares_add_up(data):
    x, y = data
    m = net(shortcut="A")
    rows = lesion.path_gradients(m, x, y, samples=1)
    assert [r["paths"] for r in rows] == [math.comb(9, k) for k in range(10)] and sum(r["paths"] for r in rows) == 512
    assert rows[0]["grad_norm"] > 0  # the path through the shortcuts alone carries gradient
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    lo, hi = lesion.effective_lengths(rows)
    assert 0 <= lo <= hi <= 9
    with pytest.raises(ValueError, match="plain net"):
        lesion.path_gradients(net(shortcut="none"), x, y, samples=1)


@pytest.mark.slow
def test_a_run_gets_its_lesion_files_once_and_bad_input_is_one_line(data, tmp_path, monkeypatch, capsys):
    from reslab.analysis import lesion_run

    x, y = data
    run = tmp_path / "resnet-20-s0"
    run.mkdir()
    (run / "model.pt").write_bytes(b"")
    monkeypatch.setattr(lesion_run, "load_run", lambda r, source=None: (net(shortcut="A"), x, y))
    lesion_run.main([str(run), "images=40", "draws=2", "kmax=3", "samples=1"])
    single = (run / "lesion_single.csv").read_text().splitlines()
    assert len(single) == 1 + 9 and (run / "lesion_paths.csv").is_file()
    assert len((run / "lesion_random.csv").read_text().splitlines()) == 1 + 3 * 2
    lesion_run.main([str(run)])
    assert "done before, skipped" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        lesion_run.main([str(run), "draws=0"])
    assert bad.value.code == 2 and "draws='0' is not valid; valid: an integer >= 1" in capsys.readouterr().err


def test_a_zero_branch_reads_as_an_identity_and_a_trained_branch_does_not(data):
    x, _ = data
    zero = lesion.branch_ratios(net(shortcut="A", zero_init_residual=True), x)
    assert [r["ratio_median"] for r in zero] == [0.0] * 9
    rows = lesion.branch_ratios(net(shortcut="A"), x)
    assert all(r["ratio_median"] > 0 for r in rows) and [r["downsampling"] for r in rows].count(True) == 2
    with pytest.raises(ValueError, match="no shortcut"):
        lesion.branch_ratios(net(shortcut="none"), x)
