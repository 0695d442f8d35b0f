"""Settings: defaults, then ``VNSEARCH_*`` environment variables, then explicit arguments."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

ENV_PREFIX = "VNSEARCH_"
SNIPPET_CHARS = 240  # characters of text a hit's snippet shows (``search.results.snippet``)


@dataclass(frozen=True, slots=True)
class Settings:
    index_dir: Path = Path("index")
    max_query_chars: int = 1000
    max_per_page: int = 100
    max_page: int = 1000
    snippet_chars: int = SNIPPET_CHARS
    lock_timeout: float = 10.0
    # Posting arrays a worker keeps in memory (MiB).  None: sized to the index
    # (``postings.default_cache_bytes``), since what queries read grows with the archive and a
    # fixed size that suits a small one makes a large one reread its postings from disk
    # (measured in ``bench.scaling``; figures in the README).
    cache_mb: int | None = None
    # Origins allowed to call /api/* from a browser (the web app): exact origins, comma-separated,
    # or "*"; empty means no CORS headers at all.
    cors_origins: str = ""
    # Freed memory a search process keeps for its next search (MiB; ``search.malloc``): a search
    # of a large archive allocates megabytes of arrays, and faulting them in afresh each time
    # cost more than the search.  0 leaves the C library's defaults.
    malloc_keep_mb: int = 128


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it and says what it must be."""


MINIMUMS = {
    "cache_mb": 1,
    "lock_timeout": 0,
    "malloc_keep_mb": 0,
    "max_query_chars": 1,
    "max_page": 1,
    "max_per_page": 1,
    "snippet_chars": 1,
}


def _coerce(kind: type | str, raw: str) -> object:
    if kind is Path or kind == "Path":
        return Path(raw)
    if kind in (int, "int"):
        return int(raw)
    if kind in (float, "float"):
        return float(raw)
    return raw


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings; ``None`` overrides are ignored so CLI options can pass through unset."""
    env = os.environ if environ is None else environ
    settings = Settings()
    from_env = {}
    for f in fields(Settings):
        name = ENV_PREFIX + f.name.upper()
        raw = env.get(name)
        if raw:
            kind = str(f.type).removesuffix(" | None")  # an optional setting, once set, is one
            try:
                from_env[f.name] = _coerce(kind, raw)
            except ValueError:
                kind = {"int": "a whole number", "float": "a number"}.get(kind, kind)
                raise SettingsError(f"{name} must be {kind}, not {raw!r}") from None
    settings = replace(settings, **from_env)
    explicit = {
        k: (Path(v) if k == "index_dir" else v) for k, v in overrides.items() if v is not None
    }
    settings = replace(settings, **explicit)
    for name, low in MINIMUMS.items():
        if getattr(settings, name) is not None and getattr(settings, name) < low:
            env_name = ENV_PREFIX + name.upper()
            raise SettingsError(f"{env_name} must be at least {low}, not {getattr(settings, name)}")
    return settings


def env_int(name: str, default: int, minimum: int, environ: dict[str, str] | None = None) -> int:
    """A whole-number setting read where it is used (a build's limits), from ``VNSEARCH_<NAME>``
    when set, else ``default``; ``SettingsError`` for a value that cannot be used."""
    return _env_number(name, default, minimum, int, "a whole number", environ)


def env_float(
    name: str, default: float, minimum: float, environ: dict[str, str] | None = None
) -> float:
    """A number of seconds (or another decimal setting) from ``VNSEARCH_<NAME>``, as
    ``env_int``; not NaN nor infinite."""
    return _env_number(name, default, minimum, float, "a number", environ)


def env_choice(
    name: str, default: str, choices: tuple[str, ...], environ: dict[str, str] | None = None
) -> str:
    """One of ``choices`` from ``VNSEARCH_<NAME>`` (any case), else ``default``; ``SettingsError``
    for anything else."""
    env = os.environ if environ is None else environ
    key = ENV_PREFIX + name.upper()
    raw = env.get(key, "").strip()
    if not raw:
        return default
    if raw.lower() not in choices:
        raise SettingsError(f"{key} must be one of {', '.join(choices)}, not {raw!r}")
    return raw.lower()


def _env_number(
    name: str,
    default: float,
    minimum: float,
    parse: Callable[[str], float],
    kind: str,
    environ: dict[str, str] | None,
):
    env = os.environ if environ is None else environ
    key = ENV_PREFIX + name.upper()
    raw = env.get(key)
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise SettingsError(f"{key} must be {kind}, not {raw!r}") from None
    if not minimum <= value < float("inf"):  # NaN compares false
        raise SettingsError(f"{key} must be at least {minimum}, not {value}")
    return value
