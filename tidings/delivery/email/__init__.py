"""Email senders: over SMTP or through an HTTP email service, behind one `EmailSender`."""
