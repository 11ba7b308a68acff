"""asyncpg pool, the migration runner and refusal mapping."""

from kuekan.db.pool import create_pool, init_connection, map_db_error, refusal_from_db

__all__ = ["create_pool", "init_connection", "map_db_error", "refusal_from_db"]
