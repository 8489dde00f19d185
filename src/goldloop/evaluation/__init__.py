"""Evaluators: functions of a run (and its example) that return scores.

Everything public is exported here; the ``_`` modules are private. Write your own as a plain
function (``def correct(outputs, reference_outputs) -> bool``) or an :class:`Evaluator`
subclass; register it with :func:`register_evaluator` to make it buildable by name.
"""

from goldloop.evaluation._budgets import CostBudget, LatencyBudget
from goldloop.evaluation._distance import levenshtein, levenshtein_similarity
from goldloop.evaluation._embedding import EmbeddingSimilarity
from goldloop.evaluation._judge import CRITERIA, LLMJudge
from goldloop.evaluation._judge_cache import (
    JsonlJudgeCache,
    JudgeBudget,
    JudgeCache,
    MemoryJudgeCache,
)
from goldloop.evaluation._judge_http import ENV_VARS as JUDGE_ENV_VARS
from goldloop.evaluation._judge_http import JudgeEndpoint, JudgeError
from goldloop.evaluation._pairwise import PairwiseJudge, PairwiseResult
from goldloop.evaluation._protocol import (
    FUNCTION_PARAMETERS,
    Evaluator,
    FunctionEvaluator,
    aevaluate_run,
    as_evaluator,
    coerce_results,
    evaluate_run,
)
from goldloop.evaluation._registry import build_evaluator, evaluator_names, register_evaluator
from goldloop.evaluation._results import ExperimentResults, ExperimentRow
from goldloop.evaluation._runner import aevaluate, evaluate
from goldloop.evaluation._structured import JsonParse, JsonSchema, NumericTolerance, RequiredFields
from goldloop.evaluation._text import Contains, ExactMatch, RegexMatch, StringDistance
from goldloop.evaluation._trajectory import ToolTrajectory, tool_calls
from goldloop.evaluation._types import EvaluationResult, EvaluatorInfo, ExampleData, RunData

__all__ = [
    "CRITERIA",
    "FUNCTION_PARAMETERS",
    "JUDGE_ENV_VARS",
    "Contains",
    "CostBudget",
    "EmbeddingSimilarity",
    "EvaluationResult",
    "Evaluator",
    "EvaluatorInfo",
    "ExactMatch",
    "ExampleData",
    "ExperimentResults",
    "ExperimentRow",
    "FunctionEvaluator",
    "JsonParse",
    "JsonSchema",
    "JsonlJudgeCache",
    "JudgeBudget",
    "JudgeCache",
    "JudgeEndpoint",
    "JudgeError",
    "LLMJudge",
    "LatencyBudget",
    "MemoryJudgeCache",
    "NumericTolerance",
    "PairwiseJudge",
    "PairwiseResult",
    "RegexMatch",
    "RequiredFields",
    "RunData",
    "StringDistance",
    "ToolTrajectory",
    "aevaluate",
    "aevaluate_run",
    "as_evaluator",
    "build_evaluator",
    "coerce_results",
    "evaluate",
    "evaluate_run",
    "evaluator_names",
    "levenshtein",
    "levenshtein_similarity",
    "register_evaluator",
    "tool_calls",
]
