"""Corpora, token shards and generated data sets."""
