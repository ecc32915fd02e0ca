"""The fan-out between nodes over Redis: links to the servers, presence (which users a node
listens for), the wire format, publishing with a backlog, and reading (`fanout.RedisFanout`)."""
