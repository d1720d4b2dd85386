"""Reading raw mail the way ingest and linker both need it (R10); pure, no I/O."""
