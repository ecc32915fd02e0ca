"""Tidings: a self-hosted real-time notification service."""

__version__ = "0.1.0"
