"""The durable delivery queue: claiming due deliveries with a lease, handing them to their
medium, and settling each with the retry policy (retry, sent, dead or skipped)."""
