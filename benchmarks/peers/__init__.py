"""Reference servers with Tidings' real-time routing, to put Tidings' figures in context."""
