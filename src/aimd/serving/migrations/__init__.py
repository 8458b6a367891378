"""Alembic revisions of the inference service tables (version table ``alembic_version_serving``)."""
