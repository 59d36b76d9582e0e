"""Per-layer tile policy: a default :class:`~simulator.TileConfig` plus overrides by layer name.

A policy is an ordered list of rules. Each rule has a glob ``pattern`` (:func:`fnmatch.fnmatchcase`:
``*``, ``?``, ``[seq]``; case-sensitive) and a set of fields. The settings of a layer are the
default, then every rule whose pattern matches the layer's name applied **in order**: a later
rule's field replaces an earlier one's. So write broad rules first and specific ones after them
(calibration appends one exact-name rule per layer, which therefore wins).

Fields are those of :class:`~simulator.TileConfig` except ``seed`` (the noise seed is per run:
``TileOps(policy, seed=...)``), plus two layer switches:

- ``float32`` (bool, default false): keep this layer off the tile, a float32 product;
- ``matmul`` (bool, default false): run this activation x activation product
  (``ops.matmul``) on the tile, both operands quantized at run time; without it a matmul stays
  float32.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path

from simulator.config import TileConfig
from simulator.formats import FloatFormat

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["LayerPolicy", "LayerSettings", "PolicyError", "as_policy", "escape_pattern"]

_SWITCHES = {"float32": False, "matmul": False}
_TILE_FIELDS = tuple(f.name for f in fields(TileConfig) if f.name != "seed")
RULE_FIELDS = _TILE_FIELDS + tuple(_SWITCHES)
_FORMAT_FIELDS = {f for f in _TILE_FIELDS if f.endswith("_fmt")}


class PolicyError(ValueError):
    """An invalid policy: unknown field, bad value, or a pattern that names no layer."""


@dataclass(frozen=True)
class LayerSettings:
    """What a policy gives one layer: its tile configuration and its switches."""

    config: TileConfig
    float32: bool = False
    matmul: bool = False


def escape_pattern(name: str) -> str:
    """A glob pattern matching exactly ``name`` (``*``, ``?`` and ``[`` escaped)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _check_rule(index: int, rule: Mapping) -> tuple[str, dict]:
    where = f"policy rule {index}"
    if not isinstance(rule, Mapping):
        raise PolicyError(f"{where} must be a table/dict, got {type(rule).__name__}")
    rule = dict(rule)
    pattern = rule.pop("pattern", None)
    if not isinstance(pattern, str) or not pattern:
        raise PolicyError(f"{where} needs a non-empty string 'pattern', got {pattern!r}")
    where = f"policy rule {index} ({pattern!r})"
    unknown = sorted(set(rule) - set(RULE_FIELDS))
    if unknown:
        hint = " (the seed is per run: TileOps(policy, seed=...))" if "seed" in unknown else ""
        raise PolicyError(f"{where}: unknown field(s) {unknown}{hint}; known: {list(RULE_FIELDS)}")
    if not rule:
        raise PolicyError(f"{where} sets no field")
    for switch in _SWITCHES:
        if switch in rule and not isinstance(rule[switch], bool):
            raise PolicyError(f"{where}: {switch} must be true or false, got {rule[switch]!r}")
    for field in _FORMAT_FIELDS & set(rule):  # by name, so to_dict stays plain data
        try:
            rule[field] = FloatFormat.parse(rule[field]).name
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"{where}: {field}: {exc}") from None
    return pattern, rule


class LayerPolicy:
    """A default tile configuration plus ordered overrides by layer-name glob pattern.

    Parameters
    ----------
    default : TileConfig, optional
        Every layer's configuration unless a rule changes it (``TileConfig()`` if omitted).
    rules : iterable of dict
        Each ``{"pattern": glob, field: value, ...}``; fields are :data:`RULE_FIELDS`.
        Matching rules apply in order, later ones overriding earlier ones.
    layer_names : iterable of str, optional
        The model's layer names; given (or set by :meth:`bind`), every pattern must match one
        of them and asking for another layer's settings is an error.

    Raises
    ------
    PolicyError
        An unknown field, a value the tile refuses (checked now against the default), a pattern
        matching no layer of a bound model.
    """

    def __init__(self, default: TileConfig | None = None, rules: Iterable = (), layer_names=None):
        if default is None:
            default = TileConfig()
        if not isinstance(default, TileConfig):
            raise PolicyError(f"default must be a TileConfig, got {type(default).__name__}")
        self.default = default
        self.rules = tuple(_check_rule(i, r) for i, r in enumerate(rules))
        for i, (pattern, rule) in enumerate(self.rules):
            self._settings_from(rule, f"policy rule {i} ({pattern!r})")
        self.layer_names = None if layer_names is None else tuple(layer_names)
        if self.layer_names is not None:
            self._check_bound()

    # ---- construction ------------------------------------------------------------------
    def bind(self, layer_names: Iterable[str]) -> LayerPolicy:
        """This policy bound to a model's layer names (checks every pattern matches one)."""
        return LayerPolicy(self.default, self._rule_dicts(), layer_names)

    def with_rules(self, rules: Iterable) -> LayerPolicy:
        """A copy with ``rules`` appended after the existing ones (so they take precedence)."""
        return LayerPolicy(self.default, self._rule_dicts() + list(rules), self.layer_names)

    def to_dict(self) -> dict:
        """Plain data: ``{"default": TileConfig.to_dict(), "rules": [...]}`` (JSON/TOML-able)."""
        return {"default": self.default.to_dict(), "rules": self._rule_dicts()}

    @classmethod
    def from_dict(cls, data: Mapping, layer_names=None) -> LayerPolicy:
        """Inverse of :meth:`to_dict`; ``default`` may list only the fields it changes."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"a policy must be a table/dict, got {type(data).__name__}")
        unknown = sorted(set(data) - {"default", "rules"})
        if unknown:
            raise PolicyError(f"unknown policy key(s) {unknown}; known: ['default', 'rules']")
        try:
            default = TileConfig.from_dict(dict(data.get("default", {})))
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"policy default: {exc}") from None
        rules = data.get("rules", [])
        if not isinstance(rules, (list, tuple)):
            raise PolicyError(f"policy 'rules' must be a list, got {type(rules).__name__}")
        return cls(default, rules, layer_names)

    @classmethod
    def load(cls, path, layer_names=None) -> LayerPolicy:
        """Read a policy from a ``.toml`` or ``.json`` file (the :meth:`to_dict` layout).

        TOML example::

            [default]
            n = 128
            gain = 4.0
            [[rules]]
            pattern = "fc*"
            by = 10
        """
        path = Path(path)
        loaders = {".toml": lambda f: tomllib.load(f), ".json": lambda f: json.load(f)}
        loader = loaders.get(path.suffix.lower())
        if loader is None:
            raise PolicyError(f"{path}: a policy file must end in .toml or .json")
        try:
            with path.open("rb") as f:
                data = loader(f)
        except OSError as exc:
            raise PolicyError(f"{path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PolicyError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
        try:
            return cls.from_dict(data, layer_names)
        except PolicyError as exc:
            raise PolicyError(f"{path}: {exc}") from None

    # ---- queries -----------------------------------------------------------------------
    def settings(self, name: str) -> LayerSettings:
        """The configuration and switches of layer ``name``."""
        return self._cache.get(name) or self._resolve(name)

    def config(self, name: str) -> TileConfig:
        """The tile configuration of layer ``name``."""
        return self.settings(name).config

    def matching(self, name: str) -> list[str]:
        """The patterns that apply to ``name``, in application order."""
        return [p for p, _ in self.rules if fnmatchcase(name, p)]

    def table(self, layer_names: Iterable[str] | None = None) -> str:
        """The policy as a text table, per layer when layer names are given or bound."""
        from simulator.nn.stats import format_table

        names = self.layer_names if layer_names is None else tuple(layer_names)
        shown = ("n", "bx", "bw", "by", "gain", "noise", "noise_amplitude")
        if not names:
            rows = [{"pattern": "(default)", **{k: getattr(self.default, k) for k in shown}}]
            rows += [{"pattern": p, **rule} for p, rule in self.rules]
            return format_table(rows)
        rows = []
        for name in names:
            s = self.settings(name)
            where = "float32" if s.float32 else "tile"
            rows.append({"layer": name, "on": where, **{k: getattr(s.config, k) for k in shown},
                         "matmul": s.matmul, "rules": ", ".join(self.matching(name)) or "-"})
        return format_table(rows)

    def __repr__(self) -> str:
        return f"LayerPolicy(default={self.default!r}, rules={self._rule_dicts()!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, LayerPolicy) and self.to_dict() == other.to_dict()

    __hash__ = None

    # ---- internals ---------------------------------------------------------------------
    def _rule_dicts(self) -> list[dict]:
        return [{"pattern": p, **rule} for p, rule in self.rules]

    def _check_bound(self):
        for i, (pattern, _) in enumerate(self.rules):
            if not any(fnmatchcase(name, pattern) for name in self.layer_names):
                raise PolicyError(
                    f"policy rule {i}: pattern {pattern!r} matches no layer of the model "
                    f"(layers: {', '.join(self.layer_names)})"
                )

    @cached_property
    def _cache(self) -> dict:
        return {}

    def _resolve(self, name: str) -> LayerSettings:
        if self.layer_names is not None and name not in self.layer_names:
            raise PolicyError(f"layer {name!r} is not one of the model's layer names")
        merged: dict = {}
        for pattern, rule in self.rules:
            if fnmatchcase(name, pattern):
                merged.update(rule)
        settings = self._settings_from(merged, f"layer {name!r}")
        self._cache[name] = settings
        return settings

    def _settings_from(self, merged: dict, where: str) -> LayerSettings:
        tile = {k: v for k, v in merged.items() if k in _TILE_FIELDS}
        try:
            config = replace(self.default, **tile) if tile else self.default
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"{where}: {exc}") from None
        switches = {k: merged.get(k, v) for k, v in _SWITCHES.items()}
        return LayerSettings(config, **switches)


def as_policy(config_or_policy) -> LayerPolicy:
    """A :class:`LayerPolicy` from a policy, a :class:`~simulator.TileConfig` or ``None``."""
    if isinstance(config_or_policy, LayerPolicy):
        return config_or_policy
    if config_or_policy is None or isinstance(config_or_policy, TileConfig):
        return LayerPolicy(config_or_policy)
    raise TypeError(
        f"expected a TileConfig or LayerPolicy, got {type(config_or_policy).__name__}"
    )
