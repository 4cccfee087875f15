"""Plans: schema and validation, the offline and LLM planners, intent checks."""
