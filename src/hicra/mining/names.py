"""The names `hicra mine` offers before anything is mined: the two selections and the sentence
labels of planning and execution. Their one home; it imports nothing, so `hicra --help` stays
instant, and `config.py`, `evaluation.py` and the command all read them from here.
"""

CONTRASTIVE = "contrastive"
PAPER = "paper"
SELECTIONS = (CONTRASTIVE, PAPER)
PLANNING_LABELS = ("plan_generation", "uncertainty_management", "self_checking")
EXECUTION_LABELS = (
    "problem_setup",
    "active_computation",
    "fact_retrieval",
    "result_consolidation",
    "final_answer_emission",
)
