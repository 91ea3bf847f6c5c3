"""A real, local Apache Kafka broker for tests and development, without Docker."""

from streams.devkafka.broker import DevKafkaError, LocalKafka, ensure_kafka_libs

__all__ = ["DevKafkaError", "LocalKafka", "ensure_kafka_libs"]
