"""The ``[energy]`` config section: every key, its default and unit, and the provider it builds.

``parse_settings(mapping)`` validates the section (an unknown key or a bad value raises
EnergyConfigError naming the key, the value and what is allowed); ``make_provider``
turns the settings into a SignalProvider. Secrets never live in the file: a token, a
user name or a password is read from the environment variable the file names.
docs/energy.md mirrors the table of keys below.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from odop.energy.errors import EnergyConfigError
from odop.energy.policy import DEFAULT_SCALING, CarbonLevel
from odop.energy.signals import SignalProvider, StaticSignal
from odop.energy.signals.static import DEFAULT_INTENSITY_G_PER_KWH
from odop.plugins import GRID_PROVIDERS

#: Level names accepted in the config, with the task spec's 'medium' as MODERATE.
LEVEL_ALIASES = {"medium": CarbonLevel.MODERATE}


def parse_level(value: object, key: str) -> CarbonLevel:
    """A CarbonLevel from 'very_low'..'very_high' (or 'medium'); errors name ``key``."""
    if isinstance(value, str) and value.strip().lower() in LEVEL_ALIASES:
        return LEVEL_ALIASES[value.strip().lower()]
    try:
        return CarbonLevel.parse(value)  # type: ignore[arg-type]
    except (EnergyConfigError, ValueError):
        names = ", ".join(n.lower() for n in CarbonLevel.__members__)
        raise EnergyConfigError(
            f"[energy] {key} = {value!r} is not a carbon level; allowed: {names}") from None


def _default_thresholds() -> dict[int, CarbonLevel]:
    return {0: CarbonLevel.MODERATE, 5: CarbonLevel.HIGH, 10: CarbonLevel.VERY_HIGH}


@dataclass(frozen=True)
class EnergySettings:
    """The validated [energy] section. Units: s, W, gCO2/kWh, currency/MWh, cores."""

    provider: str = "static"
    kind: str | None = None  # signal the policy minimises: 'carbon' ('price' for entsoe)
    carbon: float = DEFAULT_INTENSITY_G_PER_KWH  # static value and fallback, gCO2/kWh
    price: float | None = None  # static price, currency/MWh
    file: str | None = None  # replay: CSV or JSON file
    mode: str = "absolute"  # replay: 'absolute' or 'relative' (starts at the policy's start)
    loop: bool = False  # replay: repeat the series
    zone: str | None = None  # electricitymaps zone
    region: str | None = None  # watttime region
    domain: str | None = None  # entsoe bidding zone (EIC code)
    base_url: str | None = None  # remote providers: API base (tests: a local fake)
    token_env: str | None = None  # env var holding the token (electricitymaps, entsoe)
    username_env: str = "ODOP_WATTTIME_USERNAME"
    password_env: str = "ODOP_WATTTIME_PASSWORD"
    refresh_s: float = 900.0  # remote: seconds between fetches
    timeout_s: float = 10.0  # remote: HTTP timeout
    horizon_s: float = 172800.0  # forecast horizon the policy reads (48 h)
    check_s: float = 60.0  # at most one forecast read per this many seconds
    priority_thresholds: dict[int, CarbonLevel] = field(default_factory=_default_thresholds)
    threshold_default: CarbonLevel = CarbonLevel.LOW  # below the lowest priority key
    concurrency: dict[CarbonLevel, float] = field(default_factory=lambda: dict(DEFAULT_SCALING))
    min_slots: int = 1
    level_quantiles: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    power_cap_w: dict[str, float] = field(default_factory=dict)  # node -> W; '*' = every node
    resume_w: float | None = None  # default 0.9 x the cap
    min_runtime_s: float = 30.0
    cap_settle_s: float = 5.0  # no further cap action on a node this long after one
    watts_per_core: float = 10.0  # energy estimate when none is known: W per granted core
    hold_after_sim: bool = False  # keep holding tasks once the simulation has ended

    @property
    def signal_kind(self) -> str:
        """'carbon' or 'price': what deferral and levels follow."""
        return self.kind or ("price" if self.provider == "entsoe" else "carbon")

    def cap_for(self, node: str) -> float | None:
        """The cap (W) of ``node``, or None."""
        return self.power_cap_w.get(node, self.power_cap_w.get("*"))


KEYS = tuple(f.name for f in fields(EnergySettings))


def parse_settings(mapping: Mapping[str, Any] | None) -> EnergySettings:
    """Validate an [energy] mapping (None or {} gives the defaults)."""
    if mapping is not None and not isinstance(mapping, Mapping):
        raise EnergyConfigError(f"[energy] must be a table; got {mapping!r}")
    values: dict[str, Any] = {}
    for key, raw in (mapping or {}).items():
        parser = _PARSERS.get(key)
        if parser is None:
            raise EnergyConfigError(
                f"[energy] key {key!r} is unknown; allowed: {', '.join(KEYS)}")
        values[key] = parser(key, raw)
    settings = EnergySettings(**values)
    _check(settings)
    return settings


def _check(s: EnergySettings) -> None:
    for key in GRID_PROVIDERS.get(s.provider).required:
        if getattr(s, key) is None:
            raise EnergyConfigError(
                f"[energy] provider {s.provider!r} needs key {key!r}; allowed keys: "
                f"{', '.join(KEYS)}")
    if s.provider == "static" and s.kind == "price" and s.price is None:
        raise EnergyConfigError("[energy] kind = 'price' with provider 'static' needs 'price'")
    if s.resume_w is not None:
        for node, cap in s.power_cap_w.items():
            if not 0 < s.resume_w < cap:
                raise EnergyConfigError(f"[energy] resume_w = {s.resume_w} W must be > 0 and "
                                        f"below power_cap_w = {cap} W (node {node!r})")


# -- value parsers ---------------------------------------------------------------------

def _choice(allowed: tuple[str, ...]) -> Any:
    def parse(key: str, value: object) -> str:
        if value not in allowed:
            raise EnergyConfigError(
                f"[energy] {key} = {value!r} is unknown; allowed: {', '.join(allowed)}")
        return str(value)
    return parse


def _number(minimum: float = 0.0, *, strict: bool = False, optional: bool = False) -> Any:
    def parse(key: str, value: object) -> float | None:
        if value is None and optional:
            return None
        if isinstance(value, str) and key.endswith("_s"):
            from odop.tasks.units import parse_duration
            try:
                value = parse_duration(value)
            except ValueError as exc:
                raise EnergyConfigError(f"[energy] {key}: {exc}") from None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value) and (value > minimum if strict else value >= minimum)
        if not ok:
            sign = ">" if strict else ">="
            raise EnergyConfigError(f"[energy] {key} = {value!r} must be a number {sign} {minimum}")
        return float(value)  # type: ignore[arg-type]
    return parse


def _text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EnergyConfigError(f"[energy] {key} = {value!r} must be a non-empty string")
    return value.strip()


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise EnergyConfigError(f"[energy] {key} = {value!r} must be true or false")
    return value


def _count(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EnergyConfigError(f"[energy] {key} = {value!r} must be an integer >= 0")
    return value


def _table(key: str, value: object) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise EnergyConfigError(f"[energy] {key} = {value!r} must be a table")
    return value


def _thresholds(key: str, value: object) -> dict[int, CarbonLevel]:
    out: dict[int, CarbonLevel] = {}
    for prio, level in _table(key, value).items():
        try:
            number = int(prio)
        except (TypeError, ValueError):
            raise EnergyConfigError(f"[energy] {key}: priority {prio!r} must be an integer "
                                    f"(e.g. {{\"0\" = \"moderate\", \"5\" = \"high\"}})") from None
        out[number] = parse_level(level, f"{key}.{prio}")
    return out


def _level_shares(key: str, value: object) -> dict[CarbonLevel, float]:
    out = {}
    for lv, v in _table(key, value).items():
        share = _number()(f"{key}.{lv}", v)
        if share > 1:
            raise EnergyConfigError(f"[energy] {key}.{lv} = {v!r} must be a share between 0 "
                                    "and 1 (of the free cores odop may use at that level)")
        out[parse_level(lv, f"{key}.{lv}")] = share
    return out


def _quantiles(key: str, value: object) -> tuple[float, ...]:
    items = list(value) if isinstance(value, (list, tuple)) else []
    ok = len(items) == 4 and all(
        isinstance(q, (int, float)) and not isinstance(q, bool) and 0 <= q <= 1 for q in items)
    if not ok or items != sorted(items):
        raise EnergyConfigError(f"[energy] {key} = {value!r} must be 4 ascending numbers in [0, 1]")
    return tuple(float(q) for q in items)


def _caps(key: str, value: object) -> dict[str, float]:
    number = _number(0.0, strict=True)
    if isinstance(value, Mapping):
        return {str(node): float(number(f"{key}.{node}", w)) for node, w in value.items()}
    return {"*": float(number(key, value))}


def _level(key: str, value: object) -> CarbonLevel:
    return parse_level(value, key)


_PARSERS: dict[str, Any] = {
    "provider": lambda key, value: _choice(tuple(GRID_PROVIDERS.names()))(key, value),
    "kind": _choice(("carbon", "price")),
    "carbon": _number(), "price": _number(optional=True), "file": _text,
    "mode": _choice(("absolute", "relative")), "loop": _flag, "zone": _text, "region": _text,
    "domain": _text, "base_url": _text, "token_env": _text, "username_env": _text,
    "password_env": _text, "refresh_s": _number(0.0, strict=True),
    "timeout_s": _number(0.0, strict=True), "horizon_s": _number(0.0, strict=True),
    "check_s": _number(),
    "priority_thresholds": _thresholds, "threshold_default": _level,
    "concurrency": _level_shares, "min_slots": _count, "level_quantiles": _quantiles,
    "power_cap_w": _caps, "resume_w": _number(0.0, strict=True, optional=True),
    "min_runtime_s": _number(), "cap_settle_s": _number(), "watts_per_core": _number(),
    "hold_after_sim": _flag,
}
assert set(_PARSERS) == set(KEYS), set(KEYS) ^ set(_PARSERS)


# -- provider --------------------------------------------------------------------------

def _secret(s: EnergySettings, key: str, default: str | None,
            env: Mapping[str, str]) -> str:
    name = getattr(s, key) or default
    value = env.get(name or "", "")
    if not value:
        raise EnergyConfigError(
            f"[energy] provider {s.provider!r}: environment variable {name!r} (named by "
            f"{key!r}) is unset or empty; export it before starting odop")
    return value


def make_provider(s: EnergySettings, *, now: float,
                  env: Mapping[str, str] | None = None) -> SignalProvider:
    """The SignalProvider the settings describe (``now``: start of a relative replay),
    built by its class in the ``odop.plugins.GRID_PROVIDERS`` registry."""
    env = os.environ if env is None else env
    static = StaticSignal(carbon=s.carbon, price=s.price)
    remote: dict[str, Any] = {"fallback": static, "refresh_s": s.refresh_s,
                              "timeout_s": s.timeout_s}
    if s.base_url:
        remote["base_url"] = s.base_url
    return GRID_PROVIDERS.get(s.provider).from_settings(
        s, now=now, fallback=static, remote=remote,
        secret=lambda key, default: _secret(s, key, default, env))
