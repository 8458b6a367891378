"""Schema revisions of the store's own tables (the audit log), version table ``alembic_version_store``."""
