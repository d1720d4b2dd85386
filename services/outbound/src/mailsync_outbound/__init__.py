"""Sends mail and mirrors archive/delete to the mailbox."""
