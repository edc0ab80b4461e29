"""The paper's mining pipeline (`hicra mine --selection paper`), as the paper describes it.

`pipeline` wires it over the input files, `clustering` groups paraphrases (embeddings and leader
clustering), `ranking` scores the clusters and keeps the top fraction. Nothing is imported here,
so that a module of this room loads only what it needs.
"""
