"""asyncpg pool, the migration runner and refusal mapping."""

from kuekan.db.pool import create_pool, map_db_error, refusal_from_db

__all__ = ["create_pool", "map_db_error", "refusal_from_db"]
