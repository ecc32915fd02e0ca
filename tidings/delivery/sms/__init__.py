"""SMS senders: Twilio's Messages API or an internal HTTP SMS service, tried in the order
SMS_PROVIDERS names (`delivery/failover.py`)."""
