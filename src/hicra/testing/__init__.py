"""Test support: tiny locally built models and drawn images, for tests, benchmarks and examples.

Not part of the library's layers: nothing in `hicra` imports it (except the deprecated aliases
`hicra.testing.tiny` and `hicra.testing.tiny_vision`); it may import anything in `hicra`. `tiny` builds a tiny
chat model and tokenizer, `tiny_vision` a tiny Idefics3 vision-language model and digit images.
"""
