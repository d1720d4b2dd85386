"""Local stack for development and tests: Tansu broker, embedded Postgres, Dovecot."""
