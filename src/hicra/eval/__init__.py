"""The eval wing: everything `hicra eval` runs.

One job per module: `registry` (the math and vision-language benchmarks: where each lives, from
--data-dir, the copy bundled in hicra/assets/benchmarks or the hub, and how its rows become
problems with gold answers and images), `choices` (multiple-choice options and checking by letter
or option text), `sampling` (the text generation backends, Hugging Face and vLLM),
`vision` (the image-aware backends: prompts through a vision-language model's processor),
`backends` (which backend runs: HF or vLLM, text or vision-language),
`checkers` (strict-boxed and math-verify behind one interface), `passk` (avg@k, unbiased pass@k,
maj@k as pure functions), `results` (results.json, the paper-style table, comparisons), `runner`
(plan, sample, check, record and resume an evaluation). Imports stay lazy.
"""
