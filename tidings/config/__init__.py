"""Settings, one module per area (server, database, Redis, ...) composed into `Settings`;
and the logging set-up they ask for. Read once at start-up; nothing here does I/O later."""
