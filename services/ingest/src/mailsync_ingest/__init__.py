"""Pulls provider mail over IMAP and publishes it."""
