"""Contrastive selection, the default of `hicra mine`: what solvers say more than problems do.

`pipeline` wires it over the input files, `corpus` reads the contrast corpus (the traces' problems,
the bundled reference solutions, files), `scoring` scores and tests each n-gram. Nothing is
imported here, so that a module of this room loads only what it needs.
"""
