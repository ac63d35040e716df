"""core_log: Messaging Lab's Kafka-like engine — pure Python, deterministic, no web code.

Storage (records, segment, index, log, storage), the simulated cluster (cluster,
controller, broker, replica, partition, network, producer, consumer), and the
verification side (history, checker, sim). See README.md, "The engine: core_log".
"""
