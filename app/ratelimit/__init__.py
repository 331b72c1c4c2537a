"""Rate limits kept in the database, so every API process shares them."""
