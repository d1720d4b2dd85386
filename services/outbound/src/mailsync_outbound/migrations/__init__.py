"""Outbound's schema: the sending accounts it knows from mail.accounts.v1."""
