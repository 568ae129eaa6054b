"""Prompt enhancement: a user's plain prompts rewritten by an LLM into World-R1's camera-first prompts.

Each plain line is given camera moves drawn from a weighted mix (`camera_mix`), the LLM writes the
scene after that camera sentence (`instructions`), and its answer is checked with the project's own
camera grammar (`check`) and retried with the reason. Two chat backends: a local transformers
causal LM (`local`) and an OpenAI-compatible endpoint (`served`). Results are cached per line
(`cache`) so that a new line costs one call, not a rerun of every line (`enhancer`).
"""
