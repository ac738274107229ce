"""The pure core: identity, the team around the child, routing and governance.

Nothing under this package imports faust, aiokafka, aiosmtplib or fastavro, performs I/O or
reads the clock: every function takes what it needs (including ``now``) and returns frozen
values. The streaming adapters call it; the unit tests exercise it without a broker.
"""
