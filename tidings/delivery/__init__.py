"""The senders: one per medium and provider, each handed rendered records and answering an
`Attempt` (`outcome.py`). They know no SQL and run no loop: the queue (`queue/`) calls them."""
