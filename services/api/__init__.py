"""The read-only HTTP side: status page, JSON read API, probes and metrics; PNG plots."""
