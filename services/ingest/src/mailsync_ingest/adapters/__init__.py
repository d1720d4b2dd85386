"""Protocol clients ingest talks to providers with."""
