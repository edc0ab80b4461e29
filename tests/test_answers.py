import gc
import time

import pytest

from hicra.answers import (
    MathVerifier,
    extract_answer,
    is_unevaluated_arithmetic,
    last_boxed,
    normalize_strict,
    stated_units,
    strict_equal,
    units_conflict,
)
from hicra.eval.checkers import StrictBoxedChecker


def test_last_boxed_balances_braces_and_takes_the_last():
    assert last_boxed(r"\boxed{1} then \boxed{\frac{1}{2}} end") == r"\frac{1}{2}"
    assert last_boxed(r"\fbox{ 7 }") == "7"
    assert last_boxed(r"\boxed{unclosed {") is None
    assert last_boxed("no box") is None


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (r"so 3+4 = 7 and \boxed{7}.", "7"),
        ("Work...\nFinal answer: 42.", "42"),
        ("Answer: $\\frac{3}{4}$", r"\frac{3}{4}"),
        ("blah\n#### 1,000", "1,000"),
        ("The result is 12+7 = 19", None),  # a bare expression is never an answer
        ("answer is probably 5", None),
        (r"Answer: \boxed{9} and later \boxed{10}", "10"),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_unevaluated_arithmetic_and_strict_normalization():
    assert is_unevaluated_arithmetic("12+7", "19")
    assert is_unevaluated_arithmetic("3 \\times 4", "12")
    assert not is_unevaluated_arithmetic("-19", "19")
    assert not is_unevaluated_arithmetic("x^2+1", "x^2+1")
    assert not is_unevaluated_arithmetic("1e-5", "0.00001")
    assert normalize_strict(r"\dfrac{1}{2}") == r"\frac{1}{2}"
    assert normalize_strict("27.0") == "27" and normalize_strict("1,000") == "1000"
    assert normalize_strict(r"90^\circ") == "90" and normalize_strict(r"5\text{ cm}") == "5cm"
    assert strict_equal("27", "27.0") and not strict_equal("0.5", r"\frac{1}{2}")
    assert not strict_equal(None, "1")


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(workers=2, timeout=3.0)
    yield v
    v.close()


def test_math_verify_equivalences(verifier):
    verdicts = verifier.check_many(
        [
            r"\boxed{\frac{1}{2}}",
            r"\boxed{0.5}",
            r"\boxed{19}",
            r"\boxed{12+7}",
            "19",
            r"\boxed{x}",
        ],
        ["0.5", r"\frac12", "19", "19", "19", "3"],
    )
    assert [v.correct for v in verdicts] == [True, True, True, False, False, False]
    assert [v.status for v in verdicts] == ["ok", "ok", "ok", "rejected", "no_answer", "ok"]


def test_adversarial_answers_time_out_and_pool_recovers(verifier):
    # gold with a power, so that the answers are not rejected as unevaluated arithmetic first
    for answer in (r"\boxed{9^{9^{9^{9}}}}", r"\boxed{(10^{10})!}"):
        start = time.monotonic()
        verdict = verifier.check(answer, "2^{10}")
        assert (verdict.correct, verdict.status) == (False, "timeout")
        assert time.monotonic() - start < 20
    assert verifier.check(r"\boxed{1024}", "2^{10}").correct
    assert verifier.check(r"\boxed{\sqrt{4}}", "2").correct


def test_rejected_adversarial_answer_costs_nothing(verifier):
    start = time.monotonic()
    verdict = verifier.check(r"\boxed{9^{9^{9^{9}}}}", "5")
    assert (verdict.correct, verdict.status) == (False, "rejected")
    assert time.monotonic() - start < 1
    long = verifier.check("\\boxed{" + "1" * 600 + "}", "5")
    assert long.status == "rejected"


def test_last_boxed_nested_and_linear_time_on_degenerate_output():
    assert last_boxed(r"\boxed{\boxed{1}}") == "1"
    assert last_boxed(r"\boxed{a} \boxed{b") == "a"  # the last box that closes
    degenerate = r"\boxed{1 " * 50_000  # 400k characters, nothing ever closes
    start = time.monotonic()
    assert last_boxed(degenerate) is None
    assert time.monotonic() - start < 1.0  # the old rescan-per-box version took minutes


def test_strict_numbers_are_exact_and_commas_only_thousands():
    assert normalize_strict("1" * 400) == "1" * 400  # no float overflow
    assert not strict_equal("9007199254740993", "9007199254740992")  # above 2**53
    assert not strict_equal("1, 2, 3", "123") and not strict_equal("123", "1, 2, 3")
    assert strict_equal("1,000,000", "1000000") and strict_equal("-0.50", "-.5")
    assert normalize_strict("0.5") == "1/2" and normalize_strict("2.0") == "2"


def test_huge_boxed_number_does_not_crash_the_checker(verifier):
    verdict = verifier.check("\\boxed{" + "1" * 400 + "}", "5")
    assert (verdict.correct, verdict.status) == (False, "ok")


LENIENT = [
    # (completion, gold, math-verify's verdict, strict-boxed's): answers a lax normalization
    # would have accepted
    (r"\boxed{\mathrm{(E)}}", r"\mathrm{(A)}", False, False),  # \mathrm content is kept
    (r"\boxed{5\mathrm{~km}}", r"5\mathrm{~cm}", False, False),  # both state units: must agree
    (r"\boxed{1 9}", "19", False, False),  # digits are never joined across whitespace
    (r"\boxed{2~5}", "25", False, False),
    # ... and what must still be accepted
    (r"\boxed{\text{(A)}}", r"\mathrm{(A)}", True, True),
    (r"\boxed{5\text{ cm}}", r"5\mathrm{~cm}", True, True),
    (r"\boxed{5}", r"5\mathrm{~cm}", True, False),  # no unit given: strict wants it written
    (r"\boxed{10\text{ inches}}", r"10\text{ inch}", True, False),
    (r"\boxed{1\,000}", "1000", True, True),  # a LaTeX thin space is a thousands separator
]


@pytest.mark.parametrize(("completion", "gold", "correct", "strict"), LENIENT)
def test_adversarial_lenient_answers(verifier, completion, gold, correct, strict):
    assert verifier.check(completion, gold).correct is correct
    assert StrictBoxedChecker().check_many([completion], [gold])[0].correct is strict


def test_stated_units():
    assert stated_units(r"5\mathrm{~cm}") == {"cm"}
    assert stated_units(r"3\text{ apples}") == {"apple"}
    assert stated_units("42") == frozenset()
    assert units_conflict(r"5\text{ km}", r"5\mathrm{cm}")
    assert not units_conflict("5", r"5\mathrm{cm}")


def _worker_processes(verifier: MathVerifier) -> list:
    verifier.check(r"\boxed{\frac{1}{2}}", "0.5")  # not strictly equal: starts a worker
    processes = [w.process for w in verifier._workers]
    assert processes and all(p.poll() is None for p in processes)
    return processes


def test_verifier_workers_end_with_the_verifier():
    """A dropped verifier's workers end then, not at exit: each in-process `hicra train` used to
    leave its workers running until the interpreter ended (50 MB each)."""
    processes = _worker_processes(MathVerifier(workers=2))
    gc.collect()  # the verifier above is already unreachable
    assert all(p.poll() is not None for p in processes)
    with MathVerifier(workers=1) as verifier:
        processes = _worker_processes(verifier)
    assert all(p.poll() is not None for p in processes)
    assert verifier.check(r"\boxed{\frac{1}{2}}", "0.5").correct  # closed: starts afresh
    verifier.close()
