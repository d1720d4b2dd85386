"""Helpers the integration and end-to-end tests share: watching topics, building events."""
