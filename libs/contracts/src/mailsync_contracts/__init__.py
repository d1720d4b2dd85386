"""Event contract shared by every mailsync service."""
