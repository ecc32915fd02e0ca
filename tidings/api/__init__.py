"""The HTTP edge: thin FastAPI routes over the services."""
