"""The language guard, the safety envelope and the shield."""
