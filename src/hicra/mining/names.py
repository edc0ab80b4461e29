"""The names `hicra mine` offers before anything is mined: the two selections and the sentence
labels of planning and execution. Their one home; it imports nothing, so `hicra --help` stays
instant, and `config.py`, `evaluation/labels.py` and the command all read them from here.
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
# Schoenfeld's episodes as Li et al. (2025, arXiv:2509.14662) labelled sentences of DeepSeek-R1
# by hand (github.com/MingLiiii/Schoenfeld_Reasoning, responses_labeled/): the defaults for a folder
# of such files. Explore (trying a path not sure to work) is in neither list.
EPISODE_PLANNING_LABELS = ("Plan", "Monitor", "Verify")
EPISODE_EXECUTION_LABELS = ("Read", "Analyze", "Implement")
EPISODE_LABEL_FIELD = "gt-class-2"  # the sentence-level episode; gt-class-1 is the paragraph's
