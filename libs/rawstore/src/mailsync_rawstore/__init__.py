"""Content-addressed raw MIME store (claim-check)."""
