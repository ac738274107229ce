"""Delivery: alerts to email. The mailer protocol, its in-memory twin, and the message."""
