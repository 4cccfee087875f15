"""The vision-language-action policy: model, tokenizer/normalization, dataset, training,
evaluation, checkpoints, policy server and client."""
