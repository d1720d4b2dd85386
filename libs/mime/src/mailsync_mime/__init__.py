"""Reading raw mail the way ingest and linker both need it (R10); pure, no I/O.

- `parsing`: the normalized fields ingest publishes for a message (`parse_message`): headers,
  participants, snippet, attachment metadata;
- `bodies`: the full text and HTML bodies and the attachments' bytes the linker's read API
  serves (`read_bodies`, `attachment_payload`), read on the same MIME tree, so attachment
  number n is the same attachment for both.
"""
