"""Contrastive selection wired over the input files (the default of `hicra mine`).

    pass 1   document frequency of every word n-gram, 1-5 words -> the pool (df >= min_df)
    pass 2   `counting.gram_profile` of the pool over the traces' sentences (a sentence counts
             at most 3 times in a trace; looping traces are reported), the distinct problem
             statements counted as a contrast source on the way; then the bundled reference
             solutions and any contrast files, each source counted on its own
    select   `scoring`: log-odds against each contrast source and against math sentences,
             fragments, sentence openers, topic evenness; the first `max_grams` by document
             frequency

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
from hicra.mining.contrastive.corpus import (
    PROBLEMS,
    SOLUTIONS,
    ContrastReport,
    DistinctTexts,
    check_sources,
    file_texts,
)
from hicra.mining.contrastive.scoring import (
    CONTRAST_FILE_LANGUAGE,
    KEPT,
    PROBLEM_LANGUAGE,
    SOLUTION_LANGUAGE,
    GramScores,
    SelectionRules,
    binding_contrast,
    extension_shares,
    ranked,
    rate_evenness,
    select,
    weighted_log_odds,
)
from hicra.mining.counting import (
    LOOP_SHARE,
    MAX_SENTENCE_REPEATS,
    GramProfile,
    OccurrenceCounter,
    gram_profile,
)
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
PROVENANCE_LOOPING = 20  # looping traces named (file:line)
CONTRAST_REASONS = (PROBLEM_LANGUAGE, SOLUTION_LANGUAGE, CONTRAST_FILE_LANGUAGE)


def _source_reason(source: str) -> str:
    return {PROBLEMS: PROBLEM_LANGUAGE, SOLUTIONS: SOLUTION_LANGUAGE}.get(
        source, CONTRAST_FILE_LANGUAGE
    )


def _score(
    pool: Sequence[str],
    profile: GramProfile,
    contrast: Sequence[tuple[str, np.ndarray, np.ndarray]],
    rules: SelectionRules,
) -> GramScores:
    """`contrast`: per source (name, counts of the pool grams, n-gram totals by length)."""
    words = np.array([g.count(" ") + 1 for g in pool], dtype=np.int64)
    occ = profile.occurrences
    ratios = [
        weighted_log_odds(occ, counts, profile.order_totals[words], totals[words], rules.prior)
        for _, counts, totals in contrast
    ]
    by_source = np.array([delta for delta, _ in ratios])
    floors = [0.0 if name == PROBLEMS else rules.solution_floor for name, _, _ in contrast]
    unseen = np.array([counts == 0 for _, counts, _ in contrast])  # passes (binding_contrast)
    contrast_delta, contrast_z, source = binding_contrast(
        by_source, np.array([z for _, z in ratios]), floors, unseen
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
        contrast_source=source,
        contrast_reasons=tuple(_source_reason(name) for name, _, _ in contrast),
        contrast_by_source=by_source,
    )


def _gram_scores(
    profile: GramProfile,
    scores: GramScores,
    contrast: Sequence[tuple[str, np.ndarray, np.ndarray]],
    i: int,
) -> dict[str, Any]:
    def r(value: float) -> float:
        return round(float(value), 4)

    assert scores.contrast_by_source is not None and scores.contrast_source is not None
    return {
        "occurrences": int(profile.occurrences[i]),
        "contrast_occurrences": sum(int(counts[i]) for _, counts, _ in contrast),
        "contrast_occurrences_by_source": {name: int(counts[i]) for name, counts, _ in contrast},
        "contrast_log_odds_by_source": {
            name: r(scores.contrast_by_source[k, i]) for k, (name, _, _) in enumerate(contrast)
        },
        "contrast_source": contrast[int(scores.contrast_source[i])][0],
        "contrast_log_odds": r(scores.contrast_by_source[scores.contrast_source[i], i]),
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
    counters = {
        source: OccurrenceCounter(candidates, config.ngram_min, config.ngram_max)
        for source in config.contrast
    }
    use_problems = PROBLEMS in config.contrast

    second = CorpusReport()
    where: list[tuple[int, int]] = []  # (file, line) of each trace, to name looping ones

    def profiled() -> Iterator[tuple[list[Any], str | None]]:
        for row in rows(second, extras=True):
            where.append((len(second.files) - 1, second.files[-1].rows.lines))
            if use_problems and row.problem is not None:
                for problem in distinct([row.problem], PROBLEMS):  # counted once per text
                    counters[PROBLEMS].add(problem)
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
                counters[source].add(text)
    for source, counter in counters.items():
        contrast.ngrams_by_source[source] = int(counter.totals.sum())
        contrast.shared_by_source[source] = int(counter.counts.sum())
    contrast.ngrams = sum(contrast.ngrams_by_source.values())
    contrast.shared = sum(contrast.shared_by_source.values())
    _check_contrast(contrast, len(candidates))
    timings["contrast files"] = time.perf_counter() - start

    start = time.perf_counter()
    keep = profile.df >= first.min_df  # exact now, also after a pruned pass 1
    pool = [g for g, k in zip(candidates, keep.tolist(), strict=True) if k]
    profile = _subset(profile, keep)
    by_source = [(s, c.counts[keep], c.totals) for s, c in counters.items()]
    if not pool:
        raise no_ngram_error(config, first.min_df, first.corpus.used)
    scores = _score(pool, profile, by_source, rules)
    reasons = select(pool, scores, rules)
    order = ranked(pool, scores, reasons)
    choices = [
        GramChoice(
            pool[i], reasons[i], int(profile.df[i]), _gram_scores(profile, scores, by_source, i)
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
    looping = [
        f"{second.files[f].path}:{line}" for f, line in map(where.__getitem__, profile.looping)
    ]
    provenance = _provenance(paths, config, spec, first, contrast, profile, scores, choices)
    provenance["looping_traces"] = {
        "traces": len(looping),
        "first": looping[:PROVENANCE_LOOPING],
        "repeated_sentences_not_counted": profile.repeats_skipped,
        "rule": f"a sentence counts at most {MAX_SENTENCE_REPEATS} times in a trace; a trace "
        f"whose further repeats hold {LOOP_SHARE:.0%} or more of its words is looping",
    }
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
        "rejected": [_rejected(c) for c in choices if c.reason != KEPT][:PROVENANCE_REJECTED],
    }


def _rejected(choice: GramChoice) -> dict[str, Any]:
    """A rejected gram with its reason; a contrast reason names the source (a file's path)."""
    entry: dict[str, Any] = {"gram": choice.gram, "df": choice.df, "reason": choice.reason}
    if choice.reason in CONTRAST_REASONS:
        entry["contrast_source"] = choice.scores["contrast_source"]
        entry["contrast_log_odds"] = choice.scores["contrast_log_odds"]
    return entry


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
        looping=profile.looping,
        repeats_skipped=profile.repeats_skipped,
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
    """An empty contrast source, or one sharing no n-gram with the pool, cannot contrast."""
    for source in contrast.sources:
        texts = contrast.texts.get(source, 0)
        if contrast.ngrams_by_source.get(source, 0) == 0 and contrast.ngrams > 0:
            raise MiningError(
                f"the contrast source {source} is empty ({texts:,} distinct texts; no word "
                "n-gram of the mined lengths in it): is it the right field or file?"
            )
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
