"""Results of grading: one CheckResult per check, one SubmissionResult per submission."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class CheckResult:
    function: str
    name: str
    passed: bool
    score: float
    max_score: float
    feedback: str = ""
    status: str = ""         # "passed", "failed", "skipped" (student-side: needs the reference)
    hints: tuple = ()
    timed_out: bool = False  # the student's function hung during this check
    # The parts of ``feedback`` (a failed check's ``Failed(message, why, case)``), kept apart so
    # that a class report can group students by the explanation they got.
    message: str = ""
    why: str = ""
    case: str = ""

    def to_dict(self) -> dict:
        """The CLI contract's per-test object (the first six keys are the original contract)."""
        return {"function": self.function, "name": self.name, "passed": self.passed,
                "score": self.score, "max_score": self.max_score, "feedback": self.feedback,
                "status": self.status or ("passed" if self.passed else "failed"),
                "message": self.message, "why": self.why, "case": self.case, "timed_out": self.timed_out}


@dataclass
class SubmissionResult:
    submission: str
    assignment: str
    tests: list[CheckResult] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)   # load problems etc., shown in reports

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 6)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 6)

    def by_function(self) -> dict[str, list[CheckResult]]:
        grouped: dict[str, list[CheckResult]] = {}
        for t in self.tests:
            grouped.setdefault(t.function, []).append(t)
        return grouped

    def function_scores(self) -> dict[str, tuple[float, float]]:
        return {fn: (round(sum(t.score for t in ts), 6), round(sum(t.max_score for t in ts), 6))
                for fn, ts in self.by_function().items()}

    def to_dict(self) -> dict:
        """The CLI contract's per-submission object."""
        return {"submission": self.submission, "assignment": self.assignment, "score": self.score,
                "max_score": self.max_score, "error": self.error,
                "tests": [t.to_dict() for t in self.tests]}

    @classmethod
    def from_dict(cls, data: dict) -> "SubmissionResult":
        tests = [CheckResult(function=t["function"], name=t["name"], passed=t["passed"],
                             score=t["score"], max_score=t["max_score"], feedback=t.get("feedback", ""),
                             status=t.get("status") or ("passed" if t["passed"] else "failed"),
                             timed_out=bool(t.get("timed_out", False)), message=t.get("message", ""),
                             why=t.get("why", ""), case=t.get("case", ""))
                 for t in data.get("tests", [])]
        return cls(submission=data["submission"], assignment=data["assignment"], tests=tests,
                   error=data.get("error"), notes=list(data.get("notes", [])))


__all__ = ["CheckResult", "SubmissionResult", "asdict"]
