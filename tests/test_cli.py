"""Console scripts: the summary line, and one-line errors with a non-zero exit for bad input."""

from __future__ import annotations

import json

import pytest


def test_summary_prints_the_papers_parameter_count(cli):
    out = cli("reslab-summary", "model=resnet", "model.depth=20").stdout.strip().splitlines()
    assert len(out) == 1
    line = json.loads(out[0])
    assert line["params"] == 269_722 and line["flops"] > 0


def test_summary_plain_equals_option_a_at_every_depth(cli):
    # One multirun call keeps this test to a single interpreter start.
    out = cli("reslab-summary", "-m", "model=plain,resnet", "model.depth=20,32,44,56,110").stdout
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    assert len(rows) == 10
    by_depth = {}
    for r in rows:
        by_depth.setdefault(r["depth"], set()).add(r["params"])
    assert all(len(v) == 1 for v in by_depth.values()), by_depth


BAD = [
    (("reslab-summary", "model.depth=21"), "model.depth=21 is not 6n+2"),
    (("reslab-summary", "model.shortcut=D"), "unknown model.shortcut 'D'; valid choices: none, A, B, C"),
    (
        ("reslab-summary", "model.name=vgg"),
        "unknown model.name 'vgg'; valid choices: densenet, dpn, imagenet-resnet, resnet, resnext, ror, vovnet, wrn",
    ),
    (("reslab-summary", "model.block=dense"), "unknown model.block 'dense'; valid choices: basic"),
    (("reslab-train", "data.source=/no/such/cifar", "logger=none"), "data source '/no/such/cifar' does not exist"),
    (("reslab-train", "profile=smoke", "data.split=train", "logger=none"), "unknown data.split 'train'"),
    (("reslab-report", "blocks"), "unknown study 'blocks'; valid choices: depth, shortcut"),
    (("reslab-report", "depth"), "no finished runs under"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a[1:]) for a, _ in BAD])
def test_bad_input_is_one_line_and_a_nonzero_exit(cli, synth_archive, args, message):
    if args[0] == "reslab-train" and "data.source" not in args[1]:
        args = args + (f"data.source={synth_archive}",)
    proc = cli(*args, check=False)
    assert proc.returncode != 0
    err = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(err) == 1, proc.stderr
    assert err[0].startswith("reslab: error: ") and message in err[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_corrupt_archive_is_one_line(cli, tmp_path, synth_archive):
    bad = tmp_path / "broken.tar.gz"
    bad.write_bytes(synth_archive.read_bytes()[:3000])
    proc = cli("reslab-train", "profile=smoke", "logger=none", f"data.source={bad}", check=False)
    assert proc.returncode != 0
    err = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(err) == 1 and "corrupt" in err[0], proc.stderr
