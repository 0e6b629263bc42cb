"""`rollback-tui demo`: a local sandbox (git deploy repo, SQLite + Alembic, flagd file, config, web service, SSH host)."""
