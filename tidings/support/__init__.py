"""Helpers that hold no rule of the product: metrics, the group-commit batcher, bounded
request bodies, Sentinel discovery, the background loop. Any layer may use them."""
