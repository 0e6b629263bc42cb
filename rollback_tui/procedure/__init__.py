"""The procedure table: steps, decisions, states, exit codes and the one fold of events (no pydantic, no Textual)."""
