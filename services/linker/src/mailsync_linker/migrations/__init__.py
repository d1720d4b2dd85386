"""Linker's schema: the CRM read model, messages, threads and their links."""
