"""Contrastive selection wired over the input files (the default of `hicra mine`).

    pass 1   document frequency of every word n-gram, 1-5 words -> the pool (df >= min_df)
    pass 2   `counting.gram_profile` of the pool over the traces' sentences, the distinct problem
             statements counted as the contrast corpus on the way; then any contrast files
    select   `scoring`: log-odds against the contrast and against math sentences, fragments,
             sentence openers, topic evenness; the first `max_grams` by document frequency

Two passes over the traces, no embedding model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from hicra.grams import StrategicGrams
from hicra.mining.config import MiningConfig, MiningError
from hicra.mining.contrastive_corpus import (
    PROBLEMS,
    ContrastReport,
    DistinctTexts,
    check_sources,
    file_texts,
)
from hicra.mining.contrastive_scoring import (
    KEPT,
    GramScores,
    SelectionRules,
    extension_shares,
    ranked,
    rate_evenness,
    select,
    weighted_log_odds,
)
from hicra.mining.counting import GramProfile, OccurrenceCounter, gram_profile
from hicra.mining.ngrams import doc_ngrams, sentences
from hicra.mining.pool import (
    GramChoice,
    MiningResult,
    Pool,
    count_pool,
    no_ngram_error,
    parameters,
)
from hicra.mining.sources import CorpusReport, TraceSpec, iter_trace_rows

PROVENANCE_REJECTED = 200  # the most frequent rejected pool grams recorded with their reason


def _score(
    pool: Sequence[str],
    profile: GramProfile,
    contrast_counts: np.ndarray,
    contrast_totals: np.ndarray,
    rules: SelectionRules,
) -> GramScores:
    words = np.array([g.count(" ") + 1 for g in pool], dtype=np.int64)
    occ = profile.occurrences
    contrast_delta, contrast_z = weighted_log_odds(
        occ, contrast_counts, profile.order_totals[words], contrast_totals[words], rules.prior
    )
    math_occ = profile.math_occurrences
    prose_totals = profile.order_totals - profile.order_math_totals
    math_delta, _ = weighted_log_odds(
        math_occ,
        occ - math_occ,
        profile.order_math_totals[words],
        prose_totals[words],
        rules.prior,
    )
    evenness = rate_evenness(
        profile.group_keys,
        profile.group_df,
        profile.group_sizes,
        profile.df,
        rules.group_pseudo_traces,
    )
    return GramScores(
        df=profile.df,
        contrast_log_odds=contrast_delta,
        contrast_z=contrast_z,
        math_log_odds=math_delta,
        extension_share=extension_shares(pool, occ),
        opening_share=profile.openings / np.maximum(occ, 1),
        words=words,
        evenness=evenness,
    )


def _gram_scores(
    profile: GramProfile, scores: GramScores, contrast_counts: np.ndarray, i: int
) -> dict[str, Any]:
    def r(value: float) -> float:
        return round(float(value), 4)

    return {
        "occurrences": int(profile.occurrences[i]),
        "contrast_occurrences": int(contrast_counts[i]),
        "contrast_log_odds": r(scores.contrast_log_odds[i]),
        "contrast_z": r(scores.contrast_z[i]),
        "math_log_odds": r(scores.math_log_odds[i]),
        "extension_share": r(scores.extension_share[i]),
        "opening_share": r(scores.opening_share[i]),
        "evenness": None if scores.evenness is None else r(scores.evenness[i]),
    }


def mine_contrastive(
    paths: Sequence[str | Path],
    config: MiningConfig,
    spec: TraceSpec,
    *,
    name: str,
    max_line_bytes: int,
) -> MiningResult:
    """Contrastive selection (module doc) of a `resolved()` config."""
    assert config.ngram_min is not None and config.rules is not None and config.contrast
    rules = config.rules
    check_sources(config.contrast)
    ngrams = partial(doc_ngrams, n_min=config.ngram_min, n_max=config.ngram_max)

    def rows(report: CorpusReport | None = None, extras: bool = False) -> Iterator[Any]:
        return iter_trace_rows(paths, spec, report, max_line_bytes=max_line_bytes, extras=extras)

    timings: dict[str, float] = {}
    start = time.perf_counter()
    first = count_pool(lambda report: (r.text for r in rows(report, True)), ngrams, config, paths)
    candidates = sorted(first.df)  # upper bounds when pass 1 pruned: pass 2 counts exactly
    timings["count"] = time.perf_counter() - start
    if not candidates:
        raise no_ngram_error(config, first.min_df, first.corpus.used)
    _check_problems(config, first.corpus)

    start = time.perf_counter()
    contrast = ContrastReport(list(config.contrast))
    distinct = DistinctTexts(contrast)
    counter = OccurrenceCounter(candidates, config.ngram_min, config.ngram_max)
    use_problems = PROBLEMS in config.contrast

    def profiled() -> Iterator[tuple[list[Any], str | None]]:
        for row in rows(extras=True):
            if use_problems and row.problem is not None:
                for problem in distinct([row.problem], PROBLEMS):  # counted once per text
                    counter.add(problem)
            yield sentences(row.text), row.group

    profile = gram_profile(profiled(), candidates, config.ngram_min, config.ngram_max)
    if profile.docs != first.corpus.used:
        raise MiningError(
            f"the input changed while it was read ({first.corpus.used} traces, then {profile.docs})"
        )
    timings["profile"] = time.perf_counter() - start

    start = time.perf_counter()
    for source in config.contrast:
        if source != PROBLEMS:
            texts = file_texts(source, config.contrast_field, contrast.files, max_line_bytes)
            for text in distinct(texts, source):
                counter.add(text)
    counts, totals = counter.counts, counter.totals
    contrast.ngrams = int(totals.sum())
    contrast.shared = int(counts.sum())
    _check_contrast(contrast, len(candidates))
    timings["contrast files"] = time.perf_counter() - start

    start = time.perf_counter()
    keep = profile.df >= first.min_df  # exact now, also after a pruned pass 1
    pool = [g for g, k in zip(candidates, keep.tolist(), strict=True) if k]
    profile = _subset(profile, keep)
    counts = counts[keep]
    if not pool:
        raise no_ngram_error(config, first.min_df, first.corpus.used)
    scores = _score(pool, profile, counts, totals, rules)
    reasons = select(pool, scores, rules)
    order = ranked(pool, scores, reasons)
    choices = [
        GramChoice(
            pool[i], reasons[i], int(profile.df[i]), _gram_scores(profile, scores, counts, i)
        )
        for i in order
    ]
    timings["select"] = time.perf_counter() - start
    kept = [c for c in choices if c.reason == KEPT]
    if not kept:
        raise MiningError(
            f"no n-gram of the {len(pool):,} in {first.min_df} or more traces passes the "
            f"selection tests ({_reason_counts(choices)}); check the contrast corpus or "
            "use --selection paper"
        )
    provenance = _provenance(paths, config, spec, first, contrast, profile, scores, choices)
    stats = {c.gram: {"df": c.df, "rank": rank, **c.scores} for rank, c in enumerate(kept)}
    grams = StrategicGrams([c.gram for c in kept], name=name, provenance=provenance, stats=stats)
    return MiningResult(
        grams,
        [],
        len(pool),
        first.min_df,
        first.corpus,
        2,
        timings,
        selection=config.selection,
        choices=choices,
        contrast=contrast,
    )


def _provenance(
    paths: Sequence[str | Path],
    config: MiningConfig,
    spec: TraceSpec,
    first: Pool,
    contrast: ContrastReport,
    profile: GramProfile,
    scores: GramScores,
    choices: Sequence[GramChoice],
) -> dict[str, Any]:
    """What produced the set: inputs, parameters, corpus, contrast, groups, and what was left out."""
    return {
        "tool": "hicra mine",
        "selection": config.selection,
        "method": "contrastive selection: weighted log-odds with an informative Dirichlet prior "
        "(Monroe et al. 2008) against the contrast corpus and against math sentences, "
        "fragments, sentence openers, topic evenness; ranked by document frequency",
        "inputs": [str(p) for p in paths],
        "parameters": parameters(
            config,
            spec,
            first.min_df,
            problem_field=spec.problem_field,
            group_field=spec.group_field,
        ),
        "corpus": first.corpus.to_dict(),
        "contrast": contrast.to_dict(),
        "groups": {
            "groups": len(profile.group_names),
            "traces_in_a_group": int(profile.group_sizes.sum()),
            "largest": dict(_largest_groups(profile)),
            "evenness": "computed"
            if scores.evenness is not None
            else "not computed: fewer than 2 groups",
        },
        "pool": len(choices),
        "reasons": _reason_tally(choices),
        "passes": 2,
        "rejected": [
            {"gram": c.gram, "df": c.df, "reason": c.reason} for c in choices if c.reason != KEPT
        ][:PROVENANCE_REJECTED],
    }


def _subset(profile: GramProfile, keep: np.ndarray) -> GramProfile:
    """The profile of the pool grams where `keep` is true (group keys renumbered)."""
    new_index = np.cumsum(keep) - 1
    size = len(keep)
    gram, group = profile.group_keys % size, profile.group_keys // size
    use = keep[gram]
    return GramProfile(
        df=profile.df[keep],
        occurrences=profile.occurrences[keep],
        math_occurrences=profile.math_occurrences[keep],
        openings=profile.openings[keep],
        order_totals=profile.order_totals,
        order_math_totals=profile.order_math_totals,
        group_keys=new_index[gram[use]] + int(keep.sum()) * group[use],
        group_df=profile.group_df[use],
        group_names=profile.group_names,
        group_sizes=profile.group_sizes,
        docs=profile.docs,
    )


def _largest_groups(profile: GramProfile, top: int = 10) -> list[tuple[str, int]]:
    order = np.argsort(-profile.group_sizes, kind="stable")[:top]
    return [(profile.group_names[i], int(profile.group_sizes[i])) for i in order]


def _reason_tally(choices: Sequence[GramChoice]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in choices:
        counts[c.reason] = counts.get(c.reason, 0) + 1
    return counts


def _reason_counts(choices: Sequence[GramChoice]) -> str:
    return ", ".join(f"{n:,} {reason}" for reason, n in _reason_tally(choices).items())


def _check_problems(config: MiningConfig, corpus: CorpusReport) -> None:
    """The default contrast needs a problem field in every input file."""
    assert config.contrast is not None
    if PROBLEMS not in config.contrast:
        return
    missing = [f.path for f in corpus.files if f.used and f.problem_field is None]
    if missing:
        raise MiningError(
            f"--contrast problems: no problem field in {', '.join(missing)} (tried problem, "
            "question, prompt, query, instruction); name it with --problem-field, give a "
            "--contrast FILE of problems or reference solutions, or use --selection paper"
        )


def _check_contrast(contrast: ContrastReport, pool: int) -> None:
    """An empty contrast corpus, or one sharing no n-gram with the pool, cannot contrast."""
    what = ", ".join(f"{source}: {n:,} distinct texts" for source, n in contrast.texts.items())
    if contrast.ngrams == 0:
        raise MiningError(
            f"the contrast corpus is empty ({what or 'no texts'}; no word n-gram of the mined "
            "lengths in it): give --contrast problems with a problem field, or a file with text"
        )
    if contrast.shared == 0:
        raise MiningError(
            f"the contrast corpus ({what}; {contrast.ngrams:,} n-grams) shares no n-gram with the "
            f"{pool:,} frequent n-grams of the traces, so it cannot tell solver language from "
            "problem language: is it the right field or file?"
        )
