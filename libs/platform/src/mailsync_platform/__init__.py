"""Service runtime shared by every mailsync service.

Settings, the Postgres pool and migrations, the transactional outbox, the dead-letter aware
Kafka consumer, telemetry and the health/metrics routes. Services import from here; nothing
here imports a service.
"""
