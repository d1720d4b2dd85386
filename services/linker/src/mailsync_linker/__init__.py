"""Threads conversations and links them to CRM items."""
