"""Train, evaluate and sample the core GPT (or any local Hugging Face causal LM) on a corpus."""
