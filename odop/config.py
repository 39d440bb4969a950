"""Configuration: every key, its default and its unit. docs/configuration.md mirrors this."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from odop.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclasses.dataclass(frozen=True)
class Config:
    """odop settings; construct with :func:`load_config` to get validation."""

    home: str = ".odop"
    """Folder holding runs/ and profiles.db ($ODOP_HOME overrides)."""
    sample_interval_s: float = 1.0
    """Seconds between observer samples on each node; each sample drives a scheduling cycle."""
    selection: str = "fifo"
    """Queue order: fifo, priority, shortest, deadline."""
    placement: str = "first_fit"
    """Core choice: first_fit, best_fit, worst_fit, round_robin."""
    busy_threshold_pct: float = 50.0
    """A core the simulation uses above this utilisation (percent) is not idle."""
    memory_reserve_pct: float = 10.0
    """Share of each node's memory (percent) that tasks are never placed into: the
    simulation's headroom."""
    drain_timeout_s: float | None = None
    """Longest wait for queued tasks at odop.stop(); None waits until the queue is empty."""
    time_limit_factor: float | None = 4.0
    """A task running longer than its declared ``time`` times this is killed (None: never)."""
    prediction_window_s: float = 5.0
    """Seconds ahead an unbound simulation's cores must be expected idle to be offered."""
    phase_min_lend_s: float = 1.0
    """A rank's cores are lent during an idle phase only if that phase usually lasts this
    long (seconds); shorter waits are not worth pausing tasks for."""
    idle_phases: tuple[str, ...] = ("io", "wait", "idle", "gpu", "checkpoint")
    """Phase names (``odop.phase``) during which a bound rank's cores may be lent to tasks."""
    share_bound_cores: bool = True
    """Offer a rank's own core to tasks while the rank mostly waits (it used less than
    ``busy_threshold_pct`` of it over each of the last two samples); they run there at
    idle priority, so the kernel gives the rank its core back the moment it wakes."""
    stop_grace_s: float = 5.0
    """Seconds between TERM and KILL when a task is stopped."""
    memory_bound: str = "auto"
    """How a task's ``memory`` maximum is enforced: ``auto`` (a memory cgroup, v2 or v1,
    where the agent may write one, else sampling), ``sample`` (the agent samples the
    task's processes and kills it past its max), ``rlimit`` (last resort: RLIMIT_DATA at
    twice the max plus 1 GiB, per process)."""
    output_max_bytes: int = 10 * 2**20
    """Bytes kept of each execution's stdout, and of its stderr: the first and the last
    half; what lies between is cut while the task runs, and the cut is noted."""
    task_dirs: tuple[str, ...] = ()
    """Folders with task spec files (*.json, *.toml) and task modules (*.py)."""
    executable_dirs: tuple[str, ...] = ("executables",)
    """Folders where executable tasks' programs may live."""
    alloc_end: float | None = None
    """Unix time the allocation ends (default: from Slurm); no task starts that cannot end
    before it."""
    scheduler_node: str | None = None
    """Node id that hosts the scheduler; None means the node of rank 0."""
    scheduler_silence_s: float = 30.0
    """Seconds a waiting rank lets the scheduler go without any answer (it is pinged
    every 2 s) before taking it for hung: one this job started is killed and started
    again (it resumes from the database); one started elsewhere is given up."""
    start_failure: str = "disable"
    """When odop.start() fails on any rank: ``disable`` odop on every rank with one
    warning (the simulation runs on, submissions are journaled), or ``raise`` OdopError
    on every rank."""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Sections owned by plugins (e.g. [energy]); validated by their owners."""

    @property
    def home_path(self) -> Path:
        return Path(os.environ.get("ODOP_HOME") or self.home).resolve()


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def config_to_dict(config: Config) -> dict[str, Any]:
    """A plain mapping that :func:`load_config` turns back into ``config``, with the
    values in force: ``home`` is the folder actually used ($ODOP_HOME when set)."""
    data = {k: getattr(config, k) for k in _FIELDS if k != "extra"}
    data["home"] = str(config.home_path)
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
    return {**data, **config.extra}


def run_config(meta: Mapping[str, Any], given: Config) -> Config:
    """The config a run was started with (recorded in its meta), unless one was given."""
    recorded = meta.get("config")
    if given != Config() or not isinstance(recorded, Mapping):
        return given
    return load_config(recorded)
_SECTIONS = ("energy",)
CHOICES = {"start_failure": ("disable", "raise"),
           "memory_bound": ("auto", "sample", "rlimit")}
"""String keys with a fixed set of values."""


def load_config(source: str | os.PathLike[str] | Mapping[str, Any] | Config | None) -> Config:
    """Build a Config from a TOML file path, a mapping, or nothing (defaults)."""
    if isinstance(source, Config):
        return source
    if source is None:
        return Config()
    if isinstance(source, Mapping):
        return _from_mapping(source)
    path = Path(source)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    table = data.pop("odop", {})  # an [odop] table, with sections like [energy] beside it
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'odop' must be a table")
    return _from_mapping({**data, **table})


def _from_mapping(data: Mapping[str, Any]) -> Config:
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            extra[key] = value
        elif key not in _FIELDS or key == "extra":
            allowed = ", ".join(sorted(k for k in _FIELDS if k != "extra") + list(_SECTIONS))
            raise ConfigError(f"unknown config key {key!r}; allowed: {allowed}")
        else:
            values[key] = _coerce(key, value)
    return Config(**values, extra=extra)


def _coerce(key: str, value: Any) -> Any:
    """Check ``value`` against the field's declared type (from its annotation)."""
    kind = str(_FIELDS[key].type)
    if value is None and "None" in kind:
        return None
    if "tuple" in kind:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} = {value!r} must be a list of strings")
        return tuple(str(v) for v in value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key!r} = {value!r} must be true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"config key {key!r} = {value!r} must be a positive whole number")
        return value
    if kind.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"config key {key!r} = {value!r} must be a positive number"
                              + (" or absent" if "None" in kind else ""))
        return float(value)
    if key in ("selection", "placement"):
        return _check_choice(key, value)
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"config key {key!r} = {value!r} is unknown; allowed: "
                          f"{', '.join(CHOICES[key])}")
    if not isinstance(value, str):
        raise ConfigError(f"config key {key!r} = {value!r} must be a string")
    return value


def _check_choice(key: str, value: Any) -> str:
    from odop.plugins import FAMILIES

    names = FAMILIES[key].names()
    if value not in names:
        raise ConfigError(f"config key {key!r} = {value!r} is unknown; allowed: {', '.join(names)}")
    return str(value)
