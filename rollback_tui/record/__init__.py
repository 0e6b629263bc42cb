"""The durable record: the event vocabulary and the journal (below the engine, health and report, which all use it)."""
