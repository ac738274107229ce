"""The hub's development tools, shipped apart from the hub (``involvement-hub-devtools``).

A local Kafka broker (``localkafka``) and mailbox (``mailbox``), the demo, a synthetic
population (``population``, ``simulate``), the benchmark (``bench``) and the fault harness
(``chaos``). They import the hub; the hub never imports them (``tests/unit/test_seams.py``).
"""
