"""Idempotency keys (IETF Idempotency-Key draft): a retried create answers the first answer."""
