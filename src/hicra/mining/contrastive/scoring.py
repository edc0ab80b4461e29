"""Contrastive selection: strategic grams are what solvers say, not what problems say.

Every n-gram of the pool (document frequency >= min_df in the successful traces) gets scores,
then passes or fails five tests in this order (the first it fails is recorded as its reason):

1. **contrast** (`problem language`, `solution language`, `contrast-file language`): the weighted
   log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008, "Fightin'
   words", eq. 16-22) of the gram's occurrences in the traces against each contrast source (by
   default the traces' own problem statements and the bundled reference solutions), counts of
   n-grams of the same length as denominators, prior alpha_w = prior x the gram's share of the
   pooled counts. The smallest over the sources must be positive: said more often by solvers
   than by the problems ("find the", "how many") and than by solutions that only execute ("the
   total", "number of", "subtract the"). The reason names the source with the smallest ratio.
   A source that never contains the gram passes it (`binding_contrast`), whatever its ratio.
2. **math** (`math-bound`): the same log-odds ratio of its occurrences in sentences that carry
   math against sentences that do not, within the traces. At most `max_math_log_odds`: a phrase
   that lives next to formulas ("multiply both sides by", "which is", "so, the") executes, it
   does not steer.
3. **fragment**: no one-word extension of it (left or right, in the pool) accounts for
   `fragment_share` or more of its occurrences ("wait a" is "wait a minute", "me try" is "let me
   try").
4. **opener** (single words only): it opens a sentence in at least `min_opening_share` of its
   occurrences, as discourse markers do ("wait,", "alternatively,", "hmm,"), unlike "i", "the",
   "this".
5. **topic** (`topic-bound`, when the traces have groups): the normalized entropy
   (Shannon entropy / log G, as scipy.stats.entropy of each row) of its per-group rates, traces of the group containing it /
   traces of the group, over groups with at least `min_group_traces` traces, is at least
   `min_evenness`: a gram concentrated in a few datasets, subjects or problems is about them.

The grams that pass are ranked by document frequency (the paper's criterion), then contrast z,
then A-Z, and the first `max_grams` are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import entropy

_CELLS = 1 << 22  # (gram, group) rates held at once by rate_evenness: 32 MB
KEPT = "kept"
PROBLEM_LANGUAGE = "problem language"
SOLUTION_LANGUAGE = "solution language"
CONTRAST_FILE_LANGUAGE = "contrast-file language"
MATH_BOUND = "math-bound"
FRAGMENT = "fragment"
NOT_OPENER = "single word that rarely opens a sentence"
TOPIC_BOUND = "topic-bound"
BEYOND_MAX = "beyond --max-grams"
REASONS = (
    PROBLEM_LANGUAGE,
    SOLUTION_LANGUAGE,
    CONTRAST_FILE_LANGUAGE,
    MATH_BOUND,
    FRAGMENT,
    NOT_OPENER,
    TOPIC_BOUND,
    BEYOND_MAX,
    KEPT,
)


def weighted_log_odds(
    y_a: np.ndarray, y_b: np.ndarray, n_a: np.ndarray, n_b: np.ndarray, prior: float
) -> tuple[np.ndarray, np.ndarray]:
    """Log-odds ratio of each word in corpus a vs b with an informative Dirichlet prior, and its z.

    Monroe et al. (2008): alpha_w = prior * (y_a + y_b) / (n_a + n_b),
    delta = log((y_a + alpha_w) / (n_a + prior - y_a - alpha_w))
          - log((y_b + alpha_w) / (n_b + prior - y_b - alpha_w)),
    var(delta) ~ 1 / (y_a + alpha_w) + 1 / (y_b + alpha_w), z = delta / sqrt(var).
    `y_*` are the word's counts, `n_*` the corpus totals (arrays broadcast); y_a + y_b > 0.
    """
    y_a, y_b = np.asarray(y_a, dtype=np.float64), np.asarray(y_b, dtype=np.float64)
    n_a, n_b = np.asarray(n_a, dtype=np.float64), np.asarray(n_b, dtype=np.float64)
    alpha = prior * (y_a + y_b) / (n_a + n_b)
    delta = np.log((y_a + alpha) / (n_a + prior - y_a - alpha)) - np.log(
        (y_b + alpha) / (n_b + prior - y_b - alpha)
    )
    z = delta / np.sqrt(1.0 / (y_a + alpha) + 1.0 / (y_b + alpha))
    return delta, z


def rate_evenness(
    keys: np.ndarray,
    group_df: np.ndarray,
    group_sizes: np.ndarray,
    df: np.ndarray,
    pseudo_traces: float,
) -> np.ndarray | None:
    """Normalized entropy of each gram's per-group rates; None with fewer than two groups.

    `keys` = gram + len(df) * group, `group_df` the traces of that group containing the gram,
    `df` its traces over all groups. A group's rate is shrunk toward the gram's overall rate p
    by `pseudo_traces` (a Beta prior): (df_g + m p) / (n_g + m), so a group of two traces cannot
    make a gram look topical by chance. Evenness = entropy of the rates, normalized to sum 1, / log G.
    """
    sizes = np.asarray(group_sizes, dtype=np.float64)
    n_groups = len(sizes)
    if n_groups < 2:
        return None
    n_grams = len(df)
    overall = np.asarray(df, dtype=np.float64) / max(sizes.sum(), 1.0)
    m = float(pseudo_traces)
    prior_share = m / (sizes + m)  # rate = overall * prior_share + df_g / (n_g + m)
    gram_of = keys % n_grams
    order = np.argsort(gram_of, kind="stable")
    gram_sorted, group_sorted = gram_of[order], (keys // n_grams)[order]
    added = group_df[order] / (sizes[group_sorted] + m)
    evenness = np.empty(n_grams, dtype=np.float64)
    rows = max(1, _CELLS // n_groups)  # a block of grams x all groups in memory at a time
    for start in range(0, n_grams, rows):
        stop = min(start + rows, n_grams)
        lo, hi = np.searchsorted(gram_sorted, [start, stop])
        rates = overall[start:stop, None] * prior_share[None, :]
        rates[gram_sorted[lo:hi] - start, group_sorted[lo:hi]] += added[lo:hi]
        evenness[start:stop] = entropy(rates, axis=1) / np.log(n_groups)
    return evenness


def extension_shares(grams: Sequence[str], occurrences: np.ndarray) -> np.ndarray:
    """Per gram, the largest share of its occurrences that one pool gram a word longer accounts for."""
    index = {g: i for i, g in enumerate(grams)}
    best = np.zeros(len(grams), dtype=np.float64)
    for gram, count in zip(grams, occurrences.tolist(), strict=True):
        words = gram.split(" ")
        if len(words) < 2:
            continue
        for part in (" ".join(words[:-1]), " ".join(words[1:])):
            i = index.get(part)
            if i is not None and count > best[i]:
                best[i] = count
    return best / np.maximum(np.asarray(occurrences, dtype=np.float64), 1.0)


@dataclass(frozen=True)
class SelectionRules:
    """The size of the set, the prior of the log-odds ratios and the tests' thresholds (module doc)."""

    max_grams: int = 110
    prior: float = 1000.0  # alpha_0: pseudo-counts of the Dirichlet prior
    max_math_log_odds: float = 0.5
    fragment_share: float = 0.9
    min_opening_share: float = 0.5
    min_evenness: float = 0.5
    group_pseudo_traces: float = 5.0
    solution_floor: float = 0.0  # the log-odds vs solutions (and contrast files) must exceed it


@dataclass(frozen=True)
class GramScores:
    """Per pool gram: the scores the tests read. `evenness` None: the traces have no groups.

    `contrast_log_odds` (minus the source's floor) and `contrast_z` are those of the binding
    contrast source (`binding_contrast`), `contrast_source` its index in `contrast_reasons`
    (None: one source, the problems); `contrast_by_source` holds every source's ratio (sources x
    grams)."""

    df: np.ndarray
    contrast_log_odds: np.ndarray
    contrast_z: np.ndarray
    math_log_odds: np.ndarray
    extension_share: np.ndarray
    opening_share: np.ndarray
    words: np.ndarray
    evenness: np.ndarray | None
    contrast_source: np.ndarray | None = None
    contrast_reasons: tuple[str, ...] = (PROBLEM_LANGUAGE,)
    contrast_by_source: np.ndarray | None = None


def binding_contrast(
    log_odds: np.ndarray,
    z: np.ndarray,
    floors: Sequence[float],
    unseen: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per gram (columns of sources x grams arrays): the source whose log-odds ratio is lowest
    above its floor (the test's threshold for that source), that ratio minus the floor, its z.

    `unseen` (sources x grams): the gram never occurs in that source. **Decision:** such a source
    passes the gram (margin +inf): a source that never says a gram cannot show it to be that
    source's language. The ratio would decide nothing: with no text of the gram's length in the
    source (traces without problem statements) it is 0 up to rounding (+-1e-16), and a trace
    more or less flipped grams to "problem language"."""
    log_odds, z = np.atleast_2d(log_odds), np.atleast_2d(z)
    margin = log_odds - np.asarray(floors, dtype=np.float64)[:, None]
    if unseen is not None:
        margin = np.where(np.atleast_2d(unseen), np.inf, margin)
    source = np.argmin(margin, axis=0)
    columns = np.arange(log_odds.shape[1])
    return margin[source, columns], z[source, columns], source


def select(grams: Sequence[str], scores: GramScores, rules: SelectionRules) -> list[str]:
    """The reason of each gram (`KEPT` for the selected ones), in the module doc's order."""
    reasons = np.full(len(grams), KEPT, dtype=object)
    source = scores.contrast_source
    if source is None:
        source = np.zeros(len(grams), dtype=np.int64)
    contrast_failed = scores.contrast_log_odds <= 0.0
    tests = [
        (np.asarray(scores.contrast_reasons, dtype=object)[source], contrast_failed),
        (MATH_BOUND, scores.math_log_odds > rules.max_math_log_odds),
        (FRAGMENT, scores.extension_share >= rules.fragment_share),
        (NOT_OPENER, (scores.words == 1) & (scores.opening_share < rules.min_opening_share)),
    ]
    if scores.evenness is not None:
        tests.append((TOPIC_BOUND, scores.evenness < rules.min_evenness))
    for reason, failed in reversed(tests):  # the first failed test wins
        reasons[failed] = reason[failed] if isinstance(reason, np.ndarray) else reason
    passed = [i for i in range(len(grams)) if reasons[i] == KEPT]
    passed.sort(key=lambda i: (-int(scores.df[i]), -float(scores.contrast_z[i]), grams[i]))
    for i in passed[rules.max_grams :]:
        reasons[i] = BEYOND_MAX
    return reasons.tolist()


def ranked(grams: Sequence[str], scores: GramScores, reasons: Sequence[str]) -> list[int]:
    """Pool indices in selection order: document frequency, contrast z, A-Z."""
    return sorted(
        range(len(grams)),
        key=lambda i: (
            reasons[i] != KEPT,
            -int(scores.df[i]),
            -float(scores.contrast_z[i]),
            grams[i],
        ),
    )
