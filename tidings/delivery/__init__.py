"""Delivery: the loops that move queued deliveries out to their media."""
