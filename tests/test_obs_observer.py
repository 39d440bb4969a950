from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from odop_obs import (
    GpuSampler,
    ObsConfigError,
    Observer,
    PowerSampler,
    Publisher,
    Recorder,
    Sampler,
    Subscriber,
    SystemSampler,
    read_samples,
    validate_sample,
)
from odop_obs.fakes import FakeGpu, FakeNvml
from odop_obs.power import NvmlPower, UtilisationModel
from odop_obs.schema import topic_for


class ListSink:
    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []
        self.closed = False

    def emit(self, sample: dict[str, Any]) -> None:
        self.samples.append(sample)

    def close(self) -> None:
        self.closed = True


class Broken(Sampler):
    name = "broken"

    def sample(self, now: float, dt: float, sections: Mapping[str, Any]) -> Any:
        raise RuntimeError("sensor fell off")


class BrokenSink(ListSink):
    def emit(self, sample: dict[str, Any]) -> None:
        raise OSError("disk full")


def test_standard_tick_has_every_section() -> None:
    nvml = FakeNvml([FakeGpu(power_w=100.0)])
    sink = ListSink()
    obs = Observer.standard([sink], nvml=nvml, node="n1", interval_s=0.1)
    obs.processes.watch(os.getpid(), "odop")
    sample = obs.tick()
    assert validate_sample(sample) == sample and sink.samples == [sample]
    assert {"system", "processes", "gpu", "power", "obs"} <= set(sample)
    assert sample["gpu"]["available"] and sample["power"]["sources"]["gpu"] == "nvml"
    assert sample["power"]["watts"]["gpu"] == pytest.approx(100.0)
    assert obs.tick()["seq"] == 1
    obs.close()
    assert sink.closed and not nvml.initialised


def test_without_gpu_sampler_power_has_no_gpu() -> None:
    obs = Observer.standard(gpu=False, power_sources=[NvmlPower(), UtilisationModel()])
    sample = obs.tick()
    assert "gpu" not in sample and sample["power"]["sources"] == {"cpu": "model"}
    obs.close()


def test_failures_are_counted_not_raised() -> None:
    good = ListSink()
    obs = Observer([Broken(), SystemSampler()], [BrokenSink(), good])
    sample = obs.tick()
    assert sample["broken"] == {"error": "RuntimeError: sensor fell off"}
    assert "cpu" in sample["system"] and good.samples == [sample]
    assert obs.errors == 2
    assert obs.tick()["obs"]["errors"] == 3  # the sampler again; the sink fails after


def test_interval_must_be_positive() -> None:
    with pytest.raises(ObsConfigError, match="interval_s"):
        Observer([], interval_s=0)


def test_thread_runs_until_stopped() -> None:
    sink = ListSink()
    obs = Observer([SystemSampler()], [sink], interval_s=0.02)
    thread = obs.start()
    deadline = time.monotonic() + 10
    while len(sink.samples) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    obs.stop()
    assert not thread.is_alive() and len(sink.samples) >= 3
    seqs = [s["seq"] for s in sink.samples]
    assert seqs == list(range(len(seqs)))


def test_run_count() -> None:
    sink = ListSink()
    assert Observer([], [sink], interval_s=0.01).run(count=3) == 3 and len(sink.samples) == 3


def test_publish_subscribe_roundtrip(tmp_path: Path) -> None:
    pub = Publisher(f"ipc://{tmp_path}/obs.sock")
    sub = Subscriber(pub.endpoint, node="n1")
    obs = Observer([SystemSampler(), GpuSampler(FakeNvml()), PowerSampler()], [pub], node="n1")
    got = None
    deadline = time.monotonic() + 10
    while got is None and time.monotonic() < deadline:  # PUB/SUB joins asynchronously
        sent = obs.tick()
        got = sub.recv(timeout_s=0.1)
    assert got is not None and got["node"] == "n1" and got["seq"] <= sent["seq"]
    assert got["gpu"]["available"] is False
    obs.close()
    sub.close()


def test_subscriber_drops_invalid_frames(tmp_path: Path) -> None:
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.bind(f"ipc://{tmp_path}/raw.sock")
    sub = Subscriber(f"ipc://{tmp_path}/raw.sock")
    good = {"v": 1, "type": "obs.sample", "id": "x", "seq": 0, "node": "n", "t": 0.0, "dt": 1.0}
    bad = [[topic_for("n"), b"\xc1"], [topic_for("n"), msgpack.packb({"v": 9})], [topic_for("n")]]
    got = None
    deadline = time.monotonic() + 10
    while got is None and time.monotonic() < deadline:
        for frames in bad:
            pub.send_multipart(frames)
        pub.send_multipart([topic_for("n"), msgpack.packb(good)])
        got = sub.recv(timeout_s=0.1)
    assert got == good and sub.invalid >= 3
    pub.close(linger=0)
    sub.close()


def test_observer_records_samples_read_back_whole(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "samples", "n1")
    obs = Observer([SystemSampler()], [rec], node="n1")
    obs.tick()
    obs.tick()
    obs.close()
    with open(rec.path, "ab") as f:
        f.write(b"\x40\x00\x00")  # a crash mid-write of the next record
    samples = list(read_samples(tmp_path))  # the run folder is enough
    assert [s["seq"] for s in samples] == [0, 1]
    assert samples[0]["system"]["cpu"]["ids"] and samples[0]["cpu"]["per_core"]


def test_flat_view_keys() -> None:
    obs = Observer.standard(nvml=FakeNvml(init_error="Driver Not Loaded"), node="n1")
    obs.processes.watch(os.getpid(), "odop", "me")
    time.sleep(0.05)
    s = obs.tick()
    obs.close()
    cores = os.cpu_count()
    for key in ("per_core", "user", "system", "iowait", "steal"):
        assert len(s["cpu"][key]) == cores and all(0 <= x <= 100 for x in s["cpu"][key])
    assert s["cpu"]["per_core"] == pytest.approx([u * 100 for u in s["system"]["cpu"]["util"]],
                                                 abs=0.02)
    assert s["memory"] == s["system"]["mem"] and s["load"] == s["system"]["load"]
    assert set(s["disk"]) == {"read_bps", "write_bps"} and set(s["net"]) == {"rx_bps", "tx_bps"}
    assert s["gpus"] == [] and "Driver Not Loaded" in s["gpus_reason"]  # no GPU: a reason
    assert s["power"]["source"] == "model" and s["power"]["watts"]["total"] > 0
    group = s["groups"]["me"]
    assert group["n"] == 1 and group["cores"] == sorted(os.sched_getaffinity(0))
    json.dumps(s)
    assert msgpack.unpackb(msgpack.packb(s)) == s


def test_no_gpu_sampler_still_says_why() -> None:
    s = Observer.standard(gpu=False).tick()
    assert s["gpus"] == [] and "off" in s["gpus_reason"]


def test_gpus_listed_with_reason_none() -> None:
    s = Observer.standard(nvml=FakeNvml([FakeGpu(), FakeGpu(uuid="GPU-1")])).tick()
    assert len(s["gpus"]) == 2 and s["gpus_reason"] is None
    assert s["gpus"][0]["sm_clock_mhz"] == 1980 and s["power"]["source"] == "nvml+model"


def test_run_for_a_duration() -> None:
    sink = ListSink()
    assert Observer([], [sink], interval_s=0.05).run(duration_s=0.2) == 4


@pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CURVE")
def test_curve_publisher_accepts_only_keyed_subscribers(tmp_path: Path) -> None:
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    pub = Publisher(f"ipc://{tmp_path}/curve.sock", curve_secret=server_secret)
    keyed = Subscriber(pub.endpoint, curve=(server_public, client_public, client_secret))
    plain = Subscriber(pub.endpoint)
    obs = Observer([SystemSampler()], [pub], node="n1")
    got = None
    deadline = time.monotonic() + 10
    while got is None and time.monotonic() < deadline:
        obs.tick()
        got = keyed.recv(timeout_s=0.1)
    assert got is not None and got["node"] == "n1"
    assert plain.recv(timeout_s=0.3) is None
    obs.close()
    keyed.close()
    plain.close()
