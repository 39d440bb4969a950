"""The observer: runs the samplers once per tick and hands each sample to its sinks."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from odop_obs.errors import ObsConfigError
from odop_obs.power.base import PowerSource
from odop_obs.samplers import GpuSampler, PowerSampler, ProcessSampler, Sampler, SystemSampler
from odop_obs.schema import header

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where samples go: the Publisher, the Recorder, or any object with these two."""

    def emit(self, sample: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class Observer:
    """Samples every ``interval_s`` seconds (1 s by default) and emits to the sinks.

    A sampler or sink that raises is logged and counted, never propagated: the
    observer lives beside a simulation and must fail open. Besides the sampler
    sections and their flat keys (``cpu``, ``memory``, ``gpus`` ...) each sample
    carries ``gpus``/``gpus_reason`` (even without a GPU sampler) and ``obs``:
    {tick_cpu_s (CPU seconds this tick took), errors (sampler and sink failures so far)}.
    """

    def __init__(
        self,
        samplers: Sequence[Sampler],
        sinks: Sequence[Sink] = (),
        node: str | None = None,
        interval_s: float = 1.0,
    ) -> None:
        if not interval_s > 0:
            raise ObsConfigError("interval_s", interval_s, "seconds > 0")
        self.samplers = list(samplers)
        self.sinks = list(sinks)
        self.node = node or socket.gethostname()
        self.interval_s = interval_s
        self.errors = 0
        self._logged: set[str] = set()
        self._seq = 0
        self._pid = os.getpid()
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def standard(
        cls,
        sinks: Sequence[Sink] = (),
        gpu: bool = True,
        nvml: Any | None = None,
        power_sources: Sequence[PowerSource] | None = None,
        **kw: Any,
    ) -> Observer:
        """System, process, GPU (unless ``gpu=False``) and power samplers, in that order.

        ``nvml`` replaces pynvml (a fake in tests), ``power_sources`` the default
        RAPL -> NVML -> model chain; ``kw`` goes to the constructor.
        """
        samplers: list[Sampler] = [SystemSampler(), ProcessSampler()]
        if gpu:
            samplers.append(GpuSampler(nvml))
        samplers.append(PowerSampler(power_sources))
        return cls(samplers, sinks, **kw)

    @property
    def processes(self) -> ProcessSampler | None:
        """The process sampler, where ``watch``/``unwatch`` register pids."""
        return next((s for s in self.samplers if isinstance(s, ProcessSampler)), None)

    def tick(self) -> dict[str, Any]:
        """Take one sample now, emit it to every sink and return it."""
        cpu0, now = time.thread_time(), time.monotonic()
        dt, self._last = now - self._last, now
        sample = header(self.node, self._pid, self._seq, time.time(), round(dt, 6))
        self._seq += 1
        for sampler in self.samplers:
            self._run(sampler, now, dt, sample)
        if "gpus" not in sample:
            sample["gpus"], sample["gpus_reason"] = [], "GPU sampling is off (gpu=False)"
        sample["obs"] = {"tick_cpu_s": round(time.thread_time() - cpu0, 6), "errors": self.errors}
        for sink in self.sinks:
            try:
                sink.emit(sample)
            except Exception:
                self._failed(f"sink {sink!r}")
        return sample

    def _run(self, sampler: Sampler, now: float, dt: float, sample: dict[str, Any]) -> None:
        """Add the sampler's section and its flat keys to ``sample``; failures counted."""
        try:
            section = sample[sampler.name] = sampler.sample(now, dt, sample)
            sample.update(sampler.top_level(section))
        except Exception as exc:
            self._failed(f"sampler {sampler.name!r}")
            sample[sampler.name] = {"error": f"{type(exc).__name__}: {exc}"}

    def _failed(self, what: str) -> None:
        """Count a failure; log its traceback the first time only (it may recur each tick)."""
        self.errors += 1
        if what not in self._logged:
            self._logged.add(what)
            log.exception("observer %s failed (logged once, counted in obs.errors)", what)

    def run(self, count: int | None = None, duration_s: float | None = None) -> int:
        """Tick every interval until ``stop()``, ``count`` ticks or ``duration_s`` seconds.

        The first tick comes one interval after the call; returns the ticks taken.
        """
        start = time.monotonic()
        end = start + duration_s if duration_s is not None else float("inf")
        ticks, deadline = 0, start + self.interval_s
        while deadline <= end + 1e-6:
            if self._stop.wait(max(deadline - time.monotonic(), 0.0)):
                break
            self.tick()
            ticks += 1
            if count is not None and ticks >= count:
                break
            deadline += self.interval_s
            if deadline < time.monotonic():  # fell behind (suspended): skip, do not burst
                deadline = time.monotonic() + self.interval_s
        return ticks

    def start(self) -> threading.Thread:
        """Run in a daemon thread (inside the node agent); ``stop()`` ends it."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="odop-obs", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the loop to end and wait up to ``timeout_s`` seconds for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def close(self) -> None:
        """Stop, then close every sampler and sink."""
        self.stop()
        parts: list[Sampler | Sink] = [*self.samplers, *self.sinks]
        for part in parts:
            try:
                part.close()
            except Exception:
                log.exception("closing %r failed", part)
