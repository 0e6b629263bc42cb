"""Before anything runs: the required-input checks and the Rollback Plan the operator reviews (over plan and adapters)."""
