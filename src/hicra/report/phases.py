"""Phase detection: the step where execution entropy stops falling and strategic diversity rises.

The paper reads its two phases off the plots by eye. hicra states a method, so that two runs are
compared by the same rule and a short or noisy run says so instead of showing a confident line:

1. Smooth each curve with a centered moving average over `window` logged points (rounded up to an
   odd width, narrowing symmetrically at the ends). Centered, because an EMA would move a kink
   later; symmetric, because then a straight stretch stays exactly straight.
2. Fit a continuous two-segment line ("hinge") y = a + b*x + c*max(0, x - k) to the smoothed curve
   by least squares, for each logged step k that leaves at least `MIN_SEGMENT` points on each side;
   keep the k with the least squared error (`fit_hinge`).
3. Accept each fit as a signal only if it has the expected shape and stands out of the noise:
   - execution entropy ends phase one at k if it falls before k (b < 0) and its slope after k is
     at most half as steep (|b + c| <= |b| / 2): falling, then flat;
   - semantic entropy (ratio to its first value) and accuracy start phase two at k if they rise
     after k (b + c > 0) at least twice as fast as they rose before (b + c >= 2 * max(b, 0)) and at
     least half as fast as they fell before (b + c > -b / 2 when b < 0): flat (or dipping), then
     rising;
   - on the raw curve, the hinge at k removes at least `MIN_IMPROVEMENT` of the squared error of a
     single straight line, and the change it describes (the fall before k, or the extra rise after
     k) is at least `MIN_SIGNAL_TO_NOISE` times the raw curve's scatter around the hinge.
4. The phase-two step is the median of the accepted signals, snapped to a logged step.
   Confidence is "high" with at least `MIN_POINTS_HIGH` points, execution entropy and at least one
   rising signal accepted, and all accepted signals within `AGREE_FRACTION` of the step range;
   "low" with fewer than `MIN_POINTS` points, no accepted signal, or accepted signals spread over
   more than `DISAGREE_FRACTION` of the step range; "medium" otherwise. `notes` says why.

Everything here is a pure function of arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_SEGMENT = 3  # points on each side of a breakpoint
MAX_CANDIDATES = 256  # breakpoints tried on a coarse grid before refining around the best
MIN_POINTS = 10  # fewer logged points than this: confidence is low whatever the fits say
MIN_POINTS_HIGH = 20
MIN_IMPROVEMENT = 0.3  # share of a straight line's squared error that the hinge must remove
MIN_SIGNAL_TO_NOISE = 3.0
AGREE_FRACTION = 0.15  # of the step range: accepted signals this close agree
DISAGREE_FRACTION = 0.30  # farther apart than this: they disagree

SIGNALS = ("execution_entropy", "semantic_entropy", "accuracy")
_SHAPES = {"execution_entropy": "falls", "semantic_entropy": "rises", "accuracy": "rises"}
_NAMES = {
    "execution_entropy": "execution entropy",
    "semantic_entropy": "semantic entropy",
    "accuracy": "accuracy",
}


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centered moving average over `window` finite points (odd width; NaNs stay NaN, skipped)."""
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    y = values[finite]
    half = max(int(window), 1) // 2
    if half == 0 or y.size < 3:
        out[finite] = y
        return out
    cumsum = np.concatenate(([0.0], np.cumsum(y)))
    i = np.arange(y.size)
    h = np.minimum(np.minimum(i, y.size - 1 - i), half)
    out[finite] = (cumsum[i + h + 1] - cumsum[i - h]) / (2 * h + 1)
    return out


@dataclass(frozen=True)
class HingeFit:
    """Least-squares fit of y = a + b*x + c*max(0, x - k): the best breakpoint k and its quality."""

    breakpoint: float
    intercept: float
    slope_before: float
    slope_after: float
    sse: float  # squared error of the hinge
    sse_line: float  # squared error of one straight line

    @property
    def improvement(self) -> float:
        """Share of the straight line's squared error that the breakpoint removes (0..1)."""
        return 1.0 - self.sse / self.sse_line if self.sse_line > 0 else 0.0

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        kink = self.slope_after - self.slope_before
        return self.intercept + self.slope_before * x + kink * np.maximum(0.0, x - self.breakpoint)


def _hinge_sse(x: np.ndarray, y: np.ndarray, k: float) -> tuple[float, np.ndarray]:
    design = np.column_stack((np.ones_like(x), x, np.maximum(0.0, x - k)))
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    return float(residual @ residual), coef


def fit_hinge(x: np.ndarray, y: np.ndarray, min_segment: int = MIN_SEGMENT) -> HingeFit | None:
    """Best continuous two-segment line through (x, y); None with too few finite points.

    Breakpoints are tried at the logged x values (on a grid of `MAX_CANDIDATES` first when there
    are more, then at every x around the best grid point), so the cost stays linear in len(x).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    n = x.size
    lo, hi = min_segment - 1, n - min_segment - 1  # k = x[i]: i+1 points at or before, n-i-1 after
    if hi < lo:
        return None
    # Center and scale x so the least squares stay well conditioned for any step numbering.
    x0, scale = x[0], max(float(x[-1] - x[0]), 1.0)
    xs = (x - x0) / scale
    candidates = np.arange(lo, hi + 1)
    if candidates.size > MAX_CANDIDATES:
        grid = np.unique(np.linspace(lo, hi, MAX_CANDIDATES).round().astype(int))
        best = min(grid, key=lambda i: _hinge_sse(xs, y, xs[i])[0])
        step = int(np.ceil((hi - lo) / (MAX_CANDIDATES - 1)))
        candidates = np.arange(max(lo, best - step), min(hi, best + step) + 1)
    results = [(_hinge_sse(xs, y, xs[i]), i) for i in candidates]
    (sse, coef), best = min(results, key=lambda item: (item[0][0], item[1]))
    line = np.polyfit(xs, y, 1) if np.ptp(xs) > 0 else np.array([0.0, y.mean()])
    sse_line = float(np.sum((y - np.polyval(line, xs)) ** 2))
    a, b, c = (float(v) for v in coef)
    return HingeFit(
        breakpoint=float(x[best]),
        intercept=float(a - b * x0 / scale),
        slope_before=b / scale,
        slope_after=(b + c) / scale,
        sse=max(sse, 0.0),
        sse_line=max(sse_line, sse, 0.0),
    )


@dataclass(frozen=True)
class Signal:
    """One curve's reading: where its slope changes, and whether that is a phase boundary."""

    name: str
    step: float | None  # the breakpoint when accepted
    accepted: bool
    reason: str  # why it was accepted or not, in words
    fit: HingeFit | None = None


def read_signal(
    name: str, x: np.ndarray, y: np.ndarray, window: int, shape: str | None = None
) -> Signal:
    """Fit a hinge to the smoothed curve and accept it when it falls-then-flattens or rises."""
    shape = shape or _SHAPES.get(name, "rises")
    label = _NAMES.get(name, name)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0:
        return Signal(name, None, False, f"{label}: not logged")
    fit = fit_hinge(x, smooth(y, window))
    if fit is None:
        return Signal(name, None, False, f"{label}: only {x.size} points")
    raw = HingeFit(fit.breakpoint, *_refit_raw(x, y, fit.breakpoint))
    noise = float(np.sqrt(raw.sse / max(x.size - 3, 1)))
    k, b, after = fit.breakpoint, fit.slope_before, fit.slope_after
    if shape == "falls":
        size = -b * (k - x[0])
        shaped = b < 0 and abs(after) <= abs(b) / 2
        what = f"falls until step {k:g}, then flattens"
        wrong = (
            f"does not fall and then flatten (slope {b:.3g} before step {k:g}, {after:.3g} after)"
        )
    else:
        size = (after - max(b, 0.0)) * (x[-1] - k)
        shaped = after > 0 and after >= 2 * max(b, 0.0) and after > abs(min(b, 0.0)) / 2
        what = f"rises from step {k:g}"
        wrong = f"does not start rising (slope {b:.3g} before step {k:g}, {after:.3g} after)"
    snr = size / noise if noise > 0 else np.inf
    if not shaped:
        return Signal(name, None, False, f"{label} {wrong}", fit)
    if raw.improvement < MIN_IMPROVEMENT:
        return Signal(
            name,
            None,
            False,
            f"{label}: a breakpoint at step {k:g} explains only {raw.improvement:.0%} "
            "more than a straight line",
            fit,
        )
    if snr < MIN_SIGNAL_TO_NOISE:
        return Signal(name, None, False, f"{label}: change at step {k:g} is within the noise", fit)
    return Signal(name, k, True, f"{label} {what}", fit)


def _refit_raw(x: np.ndarray, y: np.ndarray, k: float) -> tuple[float, float, float, float, float]:
    """Hinge at a fixed breakpoint on the raw points: (a, b, b + c, sse, sse_line)."""
    x0, scale = x[0], max(float(x[-1] - x[0]), 1.0)
    xs = (x - x0) / scale
    sse, coef = _hinge_sse(xs, y, (k - x0) / scale)
    line = np.polyfit(xs, y, 1) if np.ptp(xs) > 0 else np.array([0.0, y.mean()])
    sse_line = float(np.sum((y - np.polyval(line, xs)) ** 2))
    a, b, c = (float(v) for v in coef)
    return a - b * x0 / scale, b / scale, (b + c) / scale, max(sse, 0.0), max(sse_line, sse)


@dataclass(frozen=True)
class PhaseResult:
    """The detected start of phase two for one run, how sure it is, and why."""

    step: int | None
    confidence: str  # "high", "medium" or "low"
    notes: list[str] = field(default_factory=list)
    signals: dict[str, Signal] = field(default_factory=dict)
    points: int = 0

    def describe(self) -> str:
        where = f"step {self.step}" if self.step is not None else "no phase change found"
        return f"{where} ({self.confidence} confidence)"

    def to_dict(self) -> dict:
        return {
            "step": self.step,
            "confidence": self.confidence,
            "notes": list(self.notes),
            "points": self.points,
            "signals": {
                name: {
                    "step": s.step,
                    "accepted": s.accepted,
                    "reason": s.reason,
                    "improvement": None if s.fit is None else round(s.fit.improvement, 4),
                }
                for name, s in self.signals.items()
            },
        }


def detect_phases(
    steps: np.ndarray,
    execution_entropy: np.ndarray | None,
    semantic_entropy: np.ndarray | None,
    accuracy: np.ndarray | None,
    window: int = 5,
) -> PhaseResult:
    """Where phase one (execution entropy falling) gives way to phase two (diversity, accuracy up).

    Curves are aligned with `steps`; None or NaN where a metric was not logged. See the module
    docstring for the method and the confidence rule.
    """
    steps = np.asarray(steps, dtype=float)
    given = {
        "execution_entropy": execution_entropy,
        "semantic_entropy": semantic_entropy,
        "accuracy": accuracy,
    }
    curves = {
        name: values
        for name, raw in given.items()
        if raw is not None and np.isfinite(values := np.asarray(raw, dtype=float)).any()
    }
    signals = {name: read_signal(name, steps, values, window) for name, values in curves.items()}
    points = max((int(np.isfinite(v).sum()) for v in curves.values()), default=0)
    notes = [s.reason for s in signals.values()]
    missing = [_NAMES[n] for n in SIGNALS if n not in signals]
    if missing:
        notes.append(f"not logged: {', '.join(missing)}")
    accepted = [s for s in signals.values() if s.accepted]
    if not accepted:
        first = "no curve shows a phase change"
        if 0 < points < MIN_POINTS:
            first = f"only {points} logged points (fewer than {MIN_POINTS}): too short to tell"
        return PhaseResult(None, "low", [first, *notes], signals, points)
    where = np.array([s.step for s in accepted], dtype=float)
    finite_steps = steps[np.isfinite(steps)]
    step = int(finite_steps[np.argmin(np.abs(finite_steps - np.median(where)))])
    span = float(np.ptp(finite_steps)) or 1.0
    spread = float(np.ptp(where)) / span
    has_exec = "execution_entropy" in {s.name for s in accepted}
    has_rise = any(s.name != "execution_entropy" for s in accepted)
    if points < MIN_POINTS:
        confidence = "low"
        notes.insert(0, f"only {points} logged points (fewer than {MIN_POINTS})")
    elif spread > DISAGREE_FRACTION:
        confidence = "low"
        notes.insert(0, f"the curves disagree: their changes spread over {spread:.0%} of the run")
    elif points >= MIN_POINTS_HIGH and has_exec and has_rise and spread <= AGREE_FRACTION:
        confidence = "high"
    else:
        confidence = "medium"
        if not (has_exec and has_rise):
            notes.insert(0, "only one side of the transition is visible")
        elif spread > AGREE_FRACTION:
            notes.insert(0, f"the curves' changes spread over {spread:.0%} of the run")
        else:
            notes.insert(0, f"only {points} logged points (fewer than {MIN_POINTS_HIGH})")
    return PhaseResult(step, confidence, notes, signals, points)
