"""Vehicle-level evaluation of snippet scores."""
