"""The LLM planner's prompt templates (text only; skill lists and capacities are filled in from code)."""
