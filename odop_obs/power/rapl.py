"""RAPL energy counters through the Linux powercap sysfs tree."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from odop_obs.power.base import PowerSource

POWERCAP_ROOT = "/sys/class/powercap"
# intel-rapl:<pkg> and intel-rapl:<pkg>:<sub>; intel-rapl-mmio duplicates the package
# counters and psys overlaps them, so neither is summed.
_ZONE = re.compile(r"^intel-rapl:\d+(:\d+)?$")
_DENIED = (errno.EACCES, errno.EPERM)

FIX = ('let a group read the counters: in /etc/udev/rules.d/70-powercap.rules put '
       'SUBSYSTEM=="powercap", ACTION=="add", RUN+="/bin/chgrp powercap /sys%p/energy_uj", '
       'RUN+="/bin/chmod g+r /sys%p/energy_uj", run `udevadm trigger -s powercap` and add '
       "the user to the group powercap; or, until the next boot, "
       "`sudo chmod o+r {root}/intel-rapl:*/energy_uj`")
"""How to make the counters readable without running odop as root (``{root}``: the tree).
Linux 5.10 made ``energy_uj`` root-only (CVE-2020-8694, a power side channel): granting
a group weighs that against measuring instead of estimating."""


@dataclass
class _Zone:
    name: str
    domain: str
    fd: int
    max_uj: int
    prev_uj: int


def _read_int(fd: int) -> int:
    return int(os.pread(fd, 64, 0))


def _domain(zone_name: str) -> str | None:
    """The domain a RAPL zone counts for: package-N -> cpu, dram -> dram, others none."""
    if zone_name.startswith("package"):
        return "cpu"
    return "dram" if zone_name == "dram" else None


def _why(exc: Exception) -> str:
    return exc.strerror or str(exc) if isinstance(exc, OSError) else f"bad value ({exc})"


class RaplSource(PowerSource):
    """CPU package and DRAM power from ``energy_uj`` counters (microjoules).

    Counters wrap at ``max_energy_range_uj``; a wrap between two reads is undone.
    Zones whose counter cannot be read are skipped and named once in ``problems``;
    counters that exist but this user may not read (root-only since Linux 5.10 on many
    systems) make one problem that names them, says what power is then estimated by,
    and how to grant access (FIX). With no zone left the source is unavailable and
    reports nothing. ``zones``: watts per zone over the last tick. ``root`` may point
    at a copy of the tree (tests use a fake one in a tmp dir).
    """

    name = "rapl"

    def __init__(self, root: str = POWERCAP_ROOT) -> None:
        super().__init__()
        self.counters: list[_Zone] = []
        self.reason = ""
        self.denied: list[str] = []
        names = sorted(os.listdir(root)) if os.path.isdir(root) else []
        for entry in names:
            if _ZONE.match(entry):
                self._open(os.path.join(root, entry))
        if not self.counters:
            self.reason = f"no readable RAPL package zone under {root}"
        if self.denied:
            self.problems.append(self._denied_problem(root))

    def _denied_problem(self, root: str) -> str:
        """One message for every counter this user may not read: which, what power is
        measured by instead, and how to grant access."""
        then = ("CPU power is not measured: the next source estimates it (by default "
                "the utilisation model, labelled 'model')" if not self.counters
                else "those zones are left out")
        return (f"RAPL energy counters exist but user {os.geteuid()} may not read them "
                f"({', '.join(self.denied)}): {then}. To measure it, "
                + FIX.format(root=root))

    def _open(self, path: str) -> None:
        try:
            with open(os.path.join(path, "name")) as f:
                zone_name = f.read().strip()
            domain = _domain(zone_name)
            if domain is None:
                return
            with open(os.path.join(path, "max_energy_range_uj")) as f:
                max_uj = int(f.read())
            fd = os.open(os.path.join(path, "energy_uj"), os.O_RDONLY)
        except (OSError, ValueError) as exc:  # no permission or a malformed zone: skip it
            if isinstance(exc, OSError) and exc.errno in _DENIED:
                self.denied.append(str(exc.filename))
            else:
                self.problems.append(f"RAPL zone {path} unreadable: {_why(exc)}")
            return
        try:
            first = _read_int(fd)
        except (OSError, ValueError) as exc:
            os.close(fd)
            self.problems.append(f"RAPL zone {path} unreadable: {_why(exc)}")
            return
        label = f"{os.path.basename(path)}:{zone_name}"
        self.counters.append(_Zone(label, domain, fd, max_uj, first))

    def read(self, dt: float, sections: Mapping[str, Any]) -> dict[str, float]:
        watts: dict[str, float] = {}
        if dt <= 0:
            return watts
        for zone in self.counters:
            try:
                cur = _read_int(zone.fd)
            except (OSError, ValueError):
                continue
            delta = cur - zone.prev_uj
            if delta < 0:
                delta += zone.max_uj
            zone.prev_uj = cur
            self.zones[zone.name] = round(delta / 1e6 / dt, 3)
            watts[zone.domain] = watts.get(zone.domain, 0.0) + delta / 1e6 / dt
        return watts

    def close(self) -> None:
        for zone in self.counters:
            os.close(zone.fd)
        self.counters = []
