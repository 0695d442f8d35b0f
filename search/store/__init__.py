"""vnsearch's own files beside Whoosh's: what a query reads besides postings, written once per
index generation and memory-mapped by every worker.

Whoosh stays the index (segments, term dictionary, stored fields).  Each generation also gets a
directory of numpy arrays (``generation``): the live-document mask, the BM25F length norms, the
columns a query reads (ids, dates, sources, stories) as codes and sorted labels, the accent
vocabulary and the suggestion table.  Workers map these files read-only, so N workers hold one copy
in the OS page cache instead of N private ones.  Strings are one UTF-8 blob plus offsets
(``strings``); lookups are binary searches over sorted arrays instead of dicts.

The indexer also keeps the exact counts behind the vocabulary and the suggestions (``counts``,
``accent_files``, ``suggest_files``) with each generation and updates them with the documents
that changed, instead of counting the whole archive again.
"""
