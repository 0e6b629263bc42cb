"""Files the demo sandbox is built from: the web service, Alembic migrations, docs (read with importlib.resources)."""
