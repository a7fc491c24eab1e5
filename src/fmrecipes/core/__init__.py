"""Shared building blocks; knows no recipe."""
