"""Members: identity, pocket, history."""
