"""Encryption at rest for the fields a producer marks sensitive: the keys (`keyring.py`)
and the authenticated cipher over single values (`cipher.py`). What is sensitive in a
notification, and where it is sealed and opened, is the store's business
(`store/sealing.py`)."""
