"""Service runtime shared by every mailsync service: settings, database, broker, dead letters, telemetry, health."""
