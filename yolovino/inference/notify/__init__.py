"""Event delivery: the hub and its consumers (JSONL, webhook, MQTT, snapshots). Importing the package
registers every built-in consumer kind (notify/base.py CONSUMERS)."""

from yolovino.inference.notify import hub, mqtt  # noqa: F401  (registration)
