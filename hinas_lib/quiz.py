"""Short quizzes for the course notebooks: multiple-choice questions whose answers are
checked, with the reason shown once the learner has answered.

    from hinas_lib import quiz
    quiz.show("04")              # the notebook's questions, as widgets (radio buttons + Check)
    quiz.check("04", [2, 0, 1])  # without widgets: your choices (0-based), one per question

The questions live in :mod:`hinas_lib.quizzes` (one list per notebook), away from the
notebooks, so that no answer is printed before it is asked.
"""
from __future__ import annotations

import html
from typing import List, Sequence

from .quizzes import QUIZZES, Question


def questions(notebook: str) -> List[Question]:
    """The questions of notebook ``"01"`` .. ``"07"``."""
    if notebook not in QUIZZES:
        raise ValueError(f"no quiz for notebook {notebook!r}; there are {sorted(QUIZZES)}")
    return QUIZZES[notebook]


def check(notebook: str, choices: Sequence[int]) -> List[bool]:
    """Print feedback on ``choices`` (0-based, one per question) and return which are right."""
    qs = questions(notebook)
    if len(choices) != len(qs):
        raise ValueError(f"notebook {notebook}'s quiz has {len(qs)} questions; got {len(choices)} answers")
    out = []
    for i, (q, c) in enumerate(zip(qs, choices), 1):
        out.append(q.is_right(c))
        print(f"{i}. {q.feedback(c)}")
    print(f"{sum(out)} of {len(qs)} right.")
    return out


def text(notebook: str) -> str:
    """The questions and their numbered choices, as plain text."""
    lines = []
    for i, q in enumerate(questions(notebook), 1):
        lines.append(f"{i}. {q.text}")
        lines += [f"   ({k}) {c}" for k, c in enumerate(q.choices)]
    return "\n".join(lines)


class QuizPanel:
    """The widgets of one notebook's quiz: per question, radio buttons and a feedback line;
    one Check button. ``widget`` is what a notebook displays."""

    def __init__(self, notebook: str):
        import ipywidgets as W  # noqa: PLC0415 (optional extra)
        self.notebook, self.qs = notebook, questions(notebook)
        # the choices as wrapped text, the answer as short toggle buttons: long radio-button labels
        # do not wrap in JupyterLab and spill away from their buttons
        self.buttons = [W.ToggleButtons(options=[(f"({k})", k) for k in range(len(q.choices))], value=None,
                                        style={"button_width": "3.5em"}) for q in self.qs]
        self.feedback = [W.HTML("") for _ in self.qs]
        self.check_button = W.Button(description="Check", button_style="primary", icon="check")
        self.check_button.on_click(self._check)
        self.score = W.HTML("")
        rows = []
        for i, (q, b, f) in enumerate(zip(self.qs, self.buttons, self.feedback), 1):
            choices = "".join(f"<div style='margin-left:1.5em'>({k}) {html.escape(c)}</div>"
                              for k, c in enumerate(q.choices))
            rows += [W.HTML(f"<b>{i}.</b> {html.escape(q.text)}{choices}"), b, f]
        self.widget = W.VBox([W.HTML(f"<b>Quiz (notebook {notebook})</b>"), *rows, self.check_button, self.score])

    def _check(self, _button=None) -> None:
        right = 0
        for q, b, f in zip(self.qs, self.buttons, self.feedback):
            if b.value is None:
                f.value = "<i>choose an answer first</i>"
                continue
            ok = q.is_right(b.value)
            right += ok
            colour = "green" if ok else "#b00"
            f.value = f"<span style='color:{colour}'>{html.escape(q.feedback(b.value))}</span>"
        self.score.value = f"{right} of {len(self.qs)} right"


def show(notebook: str):
    """The quiz as widgets when ipywidgets is installed, else its text (answer with :func:`check`)."""
    try:
        panel = QuizPanel(notebook)
    except ImportError:
        print(text(notebook) + f"\n\nAnswer with quiz.check({notebook!r}, [your choices, 0-based]).")
        return None
    return panel.widget


__all__ = ["Question", "questions", "check", "text", "show", "QuizPanel"]
