"""Ingest's schema: accounts, per-folder sync cursors, the index of ingested messages."""
