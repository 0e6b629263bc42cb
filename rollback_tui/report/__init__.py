"""Signed markdown reports: rendering from events, SSHSIG signatures, verification, co-signing, loading for replay."""
