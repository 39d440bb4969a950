from __future__ import annotations

import json
import os
from pathlib import Path

import msgpack
import pytest

from odop_obs import ObsConfigError, ObsError, Recorder, read_samples
from odop_obs.recorder import HEADER, MAGIC, frame
from odop_obs.schema import header


def _sample(seq: int, node: str = "n1", t: float | None = None) -> dict[str, object]:
    return {**header(node, 1, seq, float(seq) if t is None else t, 1.0), "x": [seq] * 5}


def _record(folder: Path, n: int, node: str = "n1") -> Path:
    rec = Recorder(folder, node, fsync_s=0)
    for i in range(n):
        rec.emit(_sample(i, node))
    rec.close()
    return rec.path


def test_roundtrip_from_file_samples_folder_and_run_folder(tmp_path: Path) -> None:
    path = _record(tmp_path / "samples", 3)
    assert path.name == "n1.obs.msgpack" and path.read_bytes().startswith(MAGIC)
    for where in (path, tmp_path / "samples", tmp_path):
        assert [s["seq"] for s in read_samples(where)] == [0, 1, 2]
    assert list(read_samples(path))[1]["x"] == [1] * 5


@pytest.mark.parametrize("cut", [1, HEADER.size - 1, HEADER.size + 3])
def test_torn_last_record_keeps_every_whole_sample(tmp_path: Path, cut: int) -> None:
    path = _record(tmp_path, 4)
    torn = frame(msgpack.packb(_sample(4)))[:cut]  # the writer died inside its write
    with open(path, "ab") as f:
        f.write(torn)
    assert [s["seq"] for s in read_samples(path)] == [0, 1, 2, 3]
    rec = Recorder(tmp_path, "n1")  # reopening cuts the torn tail, then appends
    rec.emit(_sample(4))
    rec.close()
    assert [s["seq"] for s in read_samples(path)] == [0, 1, 2, 3, 4]


def test_truncation_anywhere_keeps_the_whole_records_before(tmp_path: Path) -> None:
    path = _record(tmp_path, 5)
    data = path.read_bytes()
    whole = len(data) // 5  # records are the same size here
    for size in range(len(MAGIC), len(data), 7):
        path.write_bytes(data[:size])
        got = [s["seq"] for s in read_samples(path)]
        assert got == list(range(len(got))) and len(got) >= (size - len(MAGIC)) // whole - 1


def test_corrupt_record_is_skipped_and_later_ones_kept(tmp_path: Path) -> None:
    path = _record(tmp_path, 3)
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + HEADER.size + 2] ^= 0xFF  # a flipped byte in the first payload
    path.write_bytes(bytes(data))
    assert [s["seq"] for s in read_samples(path)] == [1, 2]


def test_foreign_file_and_missing_records_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "n1.obs.msgpack").write_bytes(b"not ours")
    with pytest.raises(ObsError, match="not an odop_obs record file"):
        Recorder(tmp_path, "n1")
    with pytest.raises(ObsConfigError, match="obs.msgpack"):
        list(read_samples(tmp_path / "empty-dir-that-is-missing"))


def test_nodes_merge_in_time_order_and_filter(tmp_path: Path) -> None:
    for node, times in (("a", [0.0, 2.0]), ("b", [1.0, 3.0])):
        rec = Recorder(tmp_path, node)
        for seq, t in enumerate(times):
            rec.emit(_sample(seq, node, t))
        rec.close()
    assert [s["node"] for s in read_samples(tmp_path)] == ["a", "b", "a", "b"]
    assert [s["t"] for s in read_samples(tmp_path, node="b")] == [1.0, 3.0]


def test_older_json_lines_records_still_read(tmp_path: Path) -> None:
    folder = tmp_path / "obs"
    folder.mkdir()
    lines = [json.dumps(_sample(i)) for i in range(2)] + ['{"v":1,"ty']
    (folder / "n1.jsonl").write_text("\n".join(lines))
    assert [s["seq"] for s in read_samples(tmp_path)] == [0, 1]


def test_fsync_policy_every_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    rec = Recorder(tmp_path, "n1", fsync_s=0)
    rec.emit(_sample(0))
    rec.emit(_sample(1))
    lazy = Recorder(tmp_path, "n2", fsync_s=3600)
    lazy.emit(_sample(0))
    assert len(synced) == 2  # every record of rec, none yet of lazy
    lazy.close()
    rec.close()
    assert len(synced) == 4  # and both on close
