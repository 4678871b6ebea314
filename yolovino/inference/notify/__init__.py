"""Event delivery: the hub and its consumers (JSONL, webhook, MQTT, snapshots, the SQLite event store).
Importing the package registers every built-in consumer kind (notify/base.py CONSUMERS)."""

from yolovino.inference.notify import hub, mqtt, store  # noqa: F401  (registration)
