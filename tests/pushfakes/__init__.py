"""Loopback stand-ins for the push providers: each checks a request the way the real
provider would (format, signatures, encryption) and answers like it, or as a test scripts."""
