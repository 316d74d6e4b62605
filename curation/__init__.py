"""Curation: find photos, fetch their originals, validate, deduplicate, and pack them into an
anyres dataset through `shards`. Runs on Ray; never imports torch."""
