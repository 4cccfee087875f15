"""The vision-language-action policy: model, tokenizer/normalization, dataset, training,
evaluation, checkpoints, policy server and client."""

# The skills the shipped recipe (``vla-agent vla reproduce``) collects demonstrations of: what the
# shipped checkpoint was trained on. Skills added later run with the expert or a policy trained on them.
TRAINED_SKILLS = ("pick", "place", "push")
