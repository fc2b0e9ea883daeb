"""The offline W&B runs on disk: found at any depth, read without network, selected by study and profile.

An offline run is a directory `offline-run-<date>_<time>-<id>/` holding one transaction log `run-<id>.wandb`
(Lightning's WandbLogger with save_dir=`logger.dir` puts it in `<dir>/wandb/`). Offline runs have no
files/config.yaml: their group, job type and config exist only in that log, so it is read here directly.
wandb 0.31's Python package no longer ships a reader of the log (wandb-core reads it; `wandb leet inspect`
would spawn it once per run), but its format is small and stable: a 7-byte header, then LevelDB-style
32 KiB blocks of chunks (CRC, length, type) whose payloads are `wandb_internal_pb2.Record` protobufs.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from reslab.errors import ReslabError
from reslab.flat import flatten

RUN_DIR_PREFIX = "offline-run-"
_MAGIC = b":W&B"
_HEADER = 7  # magic, 0xBEE1, version
_BLOCK = 32 * 1024
_CHUNK = struct.Struct("<IHB")  # CRC32, payload length, chunk type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    path: Path  # the offline-run-* directory
    log: Path  # its run-<id>.wandb
    run_id: str
    name: str
    project: str
    group: str
    job_type: str
    config: dict = field(default_factory=dict)  # dotted keys, whether the run logged them flat or nested
    flat_config: bool = False  # logged as flat dotted keys ("model.depth"), not nested dicts: W&B keys differ


def find(root: Path) -> list[Path]:
    """Every offline run directory under `root` (wandb/, wandb/wandb/, a custom logger dir), oldest first.
    Symlinks such as wandb's `latest-run` are not followed, so no run is listed twice."""
    found = []
    for here, dirs, _ in os.walk(root):
        runs = [d for d in dirs if d.startswith(RUN_DIR_PREFIX)]
        found += [Path(here) / d for d in runs]
        dirs[:] = [d for d in dirs if d not in runs]
    return sorted(found, key=lambda p: p.name)


def log_file(run_dir: Path) -> Path | None:
    logs = list(run_dir.glob("run-*.wandb"))
    return logs[0] if len(logs) == 1 else None


def records(log: Path) -> Iterator:
    """The records of a transaction log, in order; a log cut short (a run still writing, or killed) ends early."""
    with open(log, "rb") as f:
        if os.fstat(f.fileno()).st_size < _HEADER:
            return
        # Mapped, not read: finding a run's identity touches only the first block of a log of any size.
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield from _parse(data)


def _parse(data) -> Iterator:
    from wandb.proto import wandb_internal_pb2 as pb

    if data[:4] != _MAGIC:
        return
    pos, parts = _HEADER, []
    while pos + _CHUNK.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK.size:  # the writer pads a block's tail that cannot hold a chunk header
            pos += left
            continue
        _, length, kind = _CHUNK.unpack_from(data, pos)
        pos += _CHUNK.size
        payload = data[pos : pos + length]
        pos += length
        if kind == 0 or len(payload) < length:
            break
        parts.append(payload)
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def _items(update) -> Iterator[tuple[str, object]]:
    """(dotted key, value) of config/summary/history items, nested dict values flattened to dotted keys."""
    for item in update:
        key = ".".join(item.nested_key) if item.nested_key else item.key
        yield from flatten(json.loads(item.value_json) if item.value_json else None, key).items()


def read(run_dir: Path) -> OfflineRun | None:
    """The run's identity and config from the first records of its log; None if it has no readable run record."""
    from google.protobuf.message import DecodeError

    log = log_file(run_dir)
    if log is None:
        return None
    config: dict = {}
    try:
        for rec in records(log):
            if rec.WhichOneof("record_type") == "run":
                r = rec.run
                config.update(_items(r.config.update))
                return OfflineRun(
                    run_dir,
                    log,
                    r.run_id,
                    r.display_name,
                    r.project,
                    r.run_group,
                    r.job_type,
                    {k: v for k, v in config.items() if not k.startswith("_wandb")},
                    any("." in item.key for item in r.config.update),
                )
    except (OSError, ValueError, DecodeError):  # a damaged log: not a run this tool can show
        return None
    return None


def group_of(run: OfflineRun) -> str:
    """`<study>/<profile>`: the group the logger sets; from the config for a run logged without one."""
    if run.group:
        return run.group
    study, profile = run.config.get("study"), run.config.get("profile.name")
    return f"{study}/{profile}" if study and profile else ""


def select(root: Path, study: str, profile: str) -> list[OfflineRun]:
    """The offline runs of one study and profile under `root`; a one-line error naming where it looked if none."""
    where = Path(root).resolve()
    if not where.is_dir():
        raise ReslabError(
            f"no offline W&B runs of {study}/{profile}: {where} does not exist "
            "(runs are logged there by logger=wandb; see conf/logger/wandb.yaml)"
        )
    runs = [r for r in map(read, find(where)) if r is not None]
    group = f"{study}/{profile}"
    mine = [r for r in runs if group_of(r) == group]
    if not mine:
        others = sorted({group_of(r) for r in runs} - {""})
        found = (
            f"valid (study/profile): {', '.join(others)}"
            if others
            else f"no {RUN_DIR_PREFIX}* directory there at any depth"
        )
        raise ReslabError(
            f"no offline W&B runs of study={study} profile={profile} (group {group}) under {where}; {found}"
        )
    return mine


def logged_keys(runs: list[OfflineRun]) -> dict[str, set[str]]:
    """What the runs logged, by section: history keys, summary keys and config keys (dotted)."""
    keys: dict[str, set[str]] = {"history": set(), "summary": set(), "config": set()}
    for run in runs:
        keys["config"] |= set(run.config)
        for rec in records(run.log):
            kind = rec.WhichOneof("record_type")
            if kind == "history":
                keys["history"] |= {k for k, _ in _items(rec.history.item)}
            elif kind == "summary":
                keys["summary"] |= {k for k, _ in _items(rec.summary.update)}
            elif kind == "config":
                keys["config"] |= {k for k, _ in _items(rec.config.update)}
    return {section: {k for k in ks if not k.startswith("_")} for section, ks in keys.items()}
