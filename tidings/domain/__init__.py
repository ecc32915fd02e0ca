"""Domain vocabulary shared by every layer: errors, statuses, principals, identifiers."""
