"""Measuring a gram set (`hicra mine --evaluate`): `reference` gives its precision and recall
against a reference set such as the paper's preset, `labels` how often it fires on sentences
labelled planning and on those labelled execution. Nothing is imported here.
"""
