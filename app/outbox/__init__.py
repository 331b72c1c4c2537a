"""The transactional outbox: events written with the change they describe, delivered later."""
