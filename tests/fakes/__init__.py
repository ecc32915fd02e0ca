"""Loopback stand-ins for providers: real servers speaking the providers' real protocols,
scripted to answer what a test needs."""
