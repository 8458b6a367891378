"""Schema revisions of the platform tables, version table ``alembic_version_platform``."""
