"""Chat, voice, task files and the scripted demo."""
