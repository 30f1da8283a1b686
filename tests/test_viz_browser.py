"""The misclassification browser: mistakes and prediction rows against plain loops; the slider drives the view."""

import pytest
import torch
from torch import nn

from kdlab.viz.browser import VideoBrowser, mistakes, model_probs, prediction_rows

CLASSES = ["a", "b", "c"]


def probs_of(rows):
    return torch.tensor(rows, dtype=torch.float32)


P_STUDENT = probs_of([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]])
P_TEACHER = probs_of([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1], [0.1, 0.2, 0.7]])
TRUE = [0, 0, 2, 1, 2]


def test_mistakes_match_a_plain_loop_and_put_what_the_other_model_knows_first():
    wrong = [r for r in range(5) if int(P_STUDENT[r].argmax()) != TRUE[r]]
    assert sorted(mistakes(P_STUDENT, TRUE)) == wrong == [1, 2, 3, 4]
    order = mistakes(P_STUDENT, TRUE, other=P_TEACHER)
    teacher_right = [r for r in wrong if int(P_TEACHER[r].argmax()) == TRUE[r]]  # 1, 2, 3, 4 -> teacher right on all
    assert set(order[:len(teacher_right)]) == set(teacher_right)
    # within a group, the student's most confident wrong answer first
    assert order == sorted(teacher_right, key=lambda r: -float(P_STUDENT[r].max()))


def test_prediction_rows():
    rows = prediction_rows({"student": P_STUDENT, "teacher": P_TEACHER}, TRUE, 1, CLASSES)
    assert rows[0] == {"model": "student", "predicted": "b", "confidence": pytest.approx(0.6),
                       "p_true": pytest.approx(0.1), "right": False}
    assert rows[1]["predicted"] == "a" and rows[1]["right"]


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="n = 4 videos"):
        mistakes(P_STUDENT, TRUE[:4])


class Toy(torch.utils.data.Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return torch.randn(3, 4, 8, 8, generator=g), TRUE[i], i


def test_model_probs_and_the_slider():
    pytest.importorskip("ipywidgets")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 8 * 8, 3))
    p = model_probs(model, Toy(), batch_size=2)
    assert p.shape == (5, 3) and torch.allclose(p.sum(1), torch.ones(5))
    with torch.no_grad():
        assert torch.allclose(p[3], torch.softmax(model(Toy()[3][0][None]), 1)[0], atol=1e-6)
    browser = VideoBrowser(Toy(), {"student": P_STUDENT, "teacher": P_TEACHER}, CLASSES, rows=[1, 3])
    assert browser.current[0]["predicted"] == "b"
    browser.slider.value = 1  # the observer redraws video 3
    assert browser.current[0]["predicted"] == "c" and browser.current[1]["predicted"] == "b"
