"""Committing a run's segments through Whoosh's writer, and cleaning what killed runs left.

Both use the writer's private steps (``_merge_segments``, ``_finalize_segment``,
``_commit_toc``, ``_finish``; the TOC's file-name patterns): Whoosh's public ``commit`` would
send every posting of the run's own segments through its writer again, and it has no way to
name the files no generation refers to.  They live here, with the other code that knows
Whoosh's on-disk format (``store``), so that a Whoosh upgrade is checked in one package.
"""

from __future__ import annotations

import logging
from pathlib import Path

from whoosh.writing import NO_MERGE

from .segment_merge import MergePolicy, Shared, merge_committed, remove_files

log = logging.getLogger(__name__)


def commit_segments(
    writer, codec, segments: list, shared: Shared, policy: MergePolicy, mergetype=None
) -> None:
    """Commit the writer's own changes (deletions, documents it was given) plus ``segments``
    as one new generation, merged as ``policy`` plans (Whoosh's merge policy would send every
    posting through its writer again, and knows nothing of pooled pairs)."""
    final = writer._merge_segments(mergetype or NO_MERGE, None, None)
    if writer._added:
        final.append(writer._finalize_segment())
    else:
        writer._close_segment()
    # The writer has the storage, schema and index name a merge needs.
    final, written = merge_committed(writer, codec, final + segments, shared, policy)
    try:
        writer._commit_toc(final)
    except BaseException:
        remove_files(writer, written)
        raise
    writer._finish()


def clean_stale_files(writer, index_dir: Path) -> None:
    """Remove what a killed reindex left: segments no generation uses, old TOCs, temp JSON.

    Runs while holding the writer lock, so no other writer can own these files; the segment the
    current writer has just started is kept.
    """
    from whoosh.index import TOC

    keep = {seg.segment_id() for seg in writer.segments} | {writer.newsegment.segment_id()}
    toc_re = TOC._pattern(writer.indexname)
    seg_re = TOC._segment_pattern(writer.indexname)
    current_gen = writer.generation - 1
    for path in index_dir.iterdir():
        name = path.name
        toc, seg = toc_re.match(name), seg_re.match(name)
        stale = (
            (name.endswith(".tmp") and path.is_file())
            or (toc is not None and int(toc.group(1)) > current_gen)
            or (seg is not None and toc is None and seg.group(1) not in keep)
        )
        if stale:
            log.warning("removing %s left by an interrupted reindex", name)
            path.unlink(missing_ok=True)
