"""Command line: ``vnsearch reindex | search | serve`` (also ``python -m search``).

Every failure a user can cause ends with a non-zero exit and one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from .config import Settings, SettingsError
from .config import load_settings as _load_settings
from .errors import VnsearchError


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"vnsearch: {message}", err=True)
    sys.exit(code)


def load_settings(**overrides: object) -> Settings:
    """The settings, or a one-line error and exit 2 when one of them cannot be used."""
    try:
        return _load_settings(**overrides)
    except SettingsError as exc:
        _fail(str(exc), code=2)
        raise  # unreachable: _fail exits


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vnsearch")
def cli() -> None:
    """Full-text search for Vietnamese news."""
    logging.basicConfig(level=logging.WARNING, format="vnsearch: %(message)s")


index_option = click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Index directory (default: $VNSEARCH_INDEX_DIR, else ./index).",
)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@index_option
@click.option("--full", is_flag=True, help="Rebuild the whole index from its sources.")
@click.option(
    "--forget",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Drop a remembered source and its documents (repeatable).",
)
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Analysis processes.")
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Also index files that symbolic links lead to outside the source.",
)
def reindex(
    paths: tuple[Path, ...],
    index_dir: Path | None,
    full: bool,
    forget: tuple[Path, ...],
    workers: int | None,
    follow_symlinks: bool,
) -> None:
    """Index PATHS (directories of .txt/.jsonl/.jsonl.gz, or such files).

    Without PATHS, refreshes every source the index remembers.
    """
    from .indexer import BuildLimits
    from .indexer import reindex as run_reindex

    settings = load_settings(index_dir=index_dir)
    try:
        BuildLimits.from_env()
    except SettingsError as exc:
        _fail(str(exc), code=2)
    bar = None
    show_bar = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if not show_bar or total == 0:
            return
        if bar is None:
            bar = click.progressbar(length=total, label="Indexing", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        summary = run_reindex(
            settings.index_dir,
            paths,
            full=full,
            forget=forget,
            progress=progress,
            workers=workers,
            lock_timeout=settings.lock_timeout,
            follow_symlinks=follow_symlinks,
        )
    except VnsearchError as exc:
        _fail(exc.message)
    except OSError as exc:
        _fail(f"cannot write the index in {settings.index_dir}: {exc.strerror or exc}")
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for item in summary.skipped:
        click.echo(f"skipped {item}", err=True)
    if summary.skipped_count > len(summary.skipped):
        click.echo(f"skipped ... and {summary.skipped_count - len(summary.skipped)} more", err=True)
    for item in summary.warnings:
        click.echo(f"warning {item}", err=True)
    if summary.warning_count > len(summary.warnings):
        more = summary.warning_count - len(summary.warnings)
        click.echo(f"warning ... and {more} more", err=True)
    for item in summary.unreadable:
        click.echo(f"unreadable {item}", err=True)
    if summary.unreadable_count > len(summary.unreadable):
        more = summary.unreadable_count - len(summary.unreadable)
        click.echo(f"unreadable ... and {more} more", err=True)
    click.echo(summary.line())
    if summary.unreadable_count:
        count = summary.unreadable_count
        _fail(f"{count} source(s) could not be read; their documents were kept")


@cli.command()
@click.argument("query")
@index_option
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--page", type=click.IntRange(1, 1000), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON body.")
def search(query: str, index_dir: Path | None, limit: int, page: int, as_json: bool) -> None:
    """Search the index and print ranked results."""
    from .engine import SearchEngine

    settings = load_settings(index_dir=index_dir)
    engine = SearchEngine(
        settings.index_dir, warm=False, cache_mb=settings.cache_mb, settings=settings
    )
    try:
        result = engine.search(query, page=page, per_page=limit)
    except VnsearchError as exc:
        _fail(exc.message)
    finally:
        engine.close()
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    relation = "≥" if result["total_relation"] == "gte" else ""
    click.echo(f"{relation}{result['total']} results ({result['took_ms']} ms)")
    if result.get("interpreted_as"):
        click.echo(f"searched for: {result['interpreted_as']}")
    if result.get("suggestion"):
        click.echo(f"did you mean: {result['suggestion']}")
    first = (page - 1) * limit
    for rank, hit in enumerate(result["hits"], start=first + 1):
        click.echo(f"{rank:>3}. {hit['title']}  [{hit['id']}]  {hit['score']:.2f}")
        text = hit["snippet"].replace("<mark>", "[").replace("</mark>", "]")
        click.echo(f"     {_unescape(text)}")


def _unescape(html_text: str) -> str:
    from html import unescape

    return unescape(html_text)


@cli.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option(
    "--bootstrap",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Index this source first when no index exists yet (e.g. samples/).",
)
def serve(
    index_dir: Path | None, host: str, port: int, workers: int, bootstrap: Path | None
) -> None:
    """Serve the search page and API with gunicorn."""
    settings = load_settings(index_dir=index_dir)
    if bootstrap is not None:
        from .indexer import index_exists
        from .indexer import reindex as run_reindex

        if not index_exists(settings.index_dir):
            click.echo(f"No index in {settings.index_dir}: indexing {bootstrap} first", err=True)
            try:
                click.echo(run_reindex(settings.index_dir, [bootstrap]).line(), err=True)
            except VnsearchError as exc:
                _fail(exc.message)
    os.environ["VNSEARCH_INDEX_DIR"] = str(settings.index_dir)
    root = Path(__file__).resolve().parent.parent
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(root / "gunicorn.conf.py"),
        "--chdir",
        str(root),
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "wsgi:app",
    ]
    os.execv(sys.executable, args)


def main() -> None:
    cli(prog_name="vnsearch")
