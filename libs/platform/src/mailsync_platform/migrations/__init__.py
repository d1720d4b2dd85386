"""Tables every service keeps in its own schema: the outbox and the processed-event log."""
