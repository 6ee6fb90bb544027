"""PoseCrafter."""
