"""Tracking's schema: so far only the shared outbox and processed-event tables."""
