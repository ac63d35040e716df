"""The engine's one I/O adapter: Kafka's wire protocol, so real Kafka clients talk to a lab's brokers.

``codec`` turns frames into kio's typed messages and back; ``gateway`` relays a
connection's requests to the engine as network messages from a client node; and
``server`` listens on 127.0.0.1 (one port per broker) and moves the cluster's
simulated clock with the wall clock while it runs. This package alone may use
asyncio and the wall clock (tests/core_log/test_engine_purity.py).

Served: the APIs a producer, a consumer group, a transactional producer and
an AdminClient of confluent-kafka, kafka-python or aiokafka need (the table is
``server.SUPPORTED``); ``groups``, ``txns`` and ``admin`` hold those handlers.
"""
