"""Settings: defaults, then ``VNSEARCH_*`` environment variables, then explicit arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

ENV_PREFIX = "VNSEARCH_"


@dataclass(frozen=True, slots=True)
class Settings:
    index_dir: Path = Path("index")
    max_query_chars: int = 1000
    max_per_page: int = 100
    max_page: int = 1000
    snippet_chars: int = 240
    lock_timeout: float = 10.0


def _coerce(kind: type, raw: str) -> object:
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
        raw = env.get(ENV_PREFIX + f.name.upper())
        if raw:
            from_env[f.name] = _coerce(f.type, raw)
    settings = replace(settings, **from_env)
    explicit = {
        k: (Path(v) if k == "index_dir" else v) for k, v in overrides.items() if v is not None
    }
    return replace(settings, **explicit)
