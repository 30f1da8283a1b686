"""Logit losses through the registry, and Distillation's options grouped per term."""

import functools

import pytest
import torch

from kdlab import losses as L
from kdlab.distill import Distillation, FeatureTerm, LabelTerm, LogitTerm, from_terms
from kdlab.losses import dkd_loss, kd_loss
from kdlab.models import build_model

from toydata import MovingBar

TINY = {"teacher": dict(widths=(12, 16, 24, 32), stem_width=8), "student": dict(widths=(4, 8, 8, 12), stem_width=4)}
TOY = (3, 8, 16, 16)


def pair():
    torch.manual_seed(0)
    return build_model("teacher", 2, **TINY["teacher"]), build_model("student", 2, **TINY["student"])


def batch(n=6):
    data = MovingBar(n, seed=3)
    clips, labels, index = zip(*(data[i] for i in range(n)))
    labels = torch.tensor(labels)
    labels[3:] = -1
    return torch.stack(clips), labels, torch.tensor(index)


def test_the_logit_terms_equal_the_loss_functions():
    teacher, student = pair()
    student.eval()  # no dropout, running BN statistics: the same forward inside the objective
    b = batch()
    with torch.no_grad():
        z_t, z_s = teacher.eval()(b[0]), student(b[0])
    target = torch.where(b[1] >= 0, b[1], z_t.argmax(1))
    for loss, expected in (("kd", kd_loss(z_s, z_t, 2.0)), ("dkd", dkd_loss(z_s, z_t, target, 0.5, 3.0, 2.0))):
        objective = Distillation(teacher, student, label_weight=0.0, logit_loss=loss, logit_weight=0.7,
                                 kd_temperature=2.0, dkd_alpha=0.5, dkd_beta=3.0, clip_shape=TOY)
        with torch.no_grad():
            terms, _ = objective(student, b)
        assert list(terms) == [loss]
        torch.testing.assert_close(terms[loss], 0.7 * expected)


def test_a_logit_loss_registered_once_is_usable_by_name(monkeypatch):
    def half_kd(z_s, z_t, target=None, *, kd_temperature=4.0, scale=0.5):
        return scale * kd_loss(z_s, z_t, kd_temperature)

    monkeypatch.setitem(L.LOGIT_LOSSES, "half_kd", half_kd)
    assert L.logit_loss_options("half_kd") == ("kd_temperature", "scale")
    teacher, student = pair()
    b = batch()
    student.eval()
    plain = Distillation(teacher, student, label_weight=0.0, logit_loss="kd", clip_shape=TOY)
    half = Distillation(teacher, student, label_weight=0.0, logit_loss="half_kd", logit_options={"scale": 0.25},
                        clip_shape=TOY)
    with torch.no_grad():
        torch.testing.assert_close(half(student, b)[0]["half_kd"], 0.25 * plain(student, b)[0]["kd"])
    with pytest.raises(ValueError, match="not settings of logit loss"):
        Distillation(teacher, student, logit_loss="kd", logit_options={"scale": 2.0}, clip_shape=TOY)
    with pytest.raises(ValueError, match="unknown logit_loss"):
        Distillation(teacher, student, logit_loss="nope", clip_shape=TOY)


def test_grouped_terms_build_the_same_objective_as_flat_keywords():
    teacher, student = pair()
    flat = Distillation(teacher, student, label_weight=0.1, logit_loss="kd", logit_weight=0.9, feature_loss="fd",
                        feature_weight=0.1, pairing="cka_softmax", tau=0.05, clip_shape=TOY)
    grouped = from_terms(teacher, student, LogitTerm(loss="kd", weight=0.9),
                         FeatureTerm(loss="fd", weight=0.1, pairing="cka_softmax", tau=0.05),
                         label=LabelTerm(weight=0.1), clip_shape=TOY)
    assert repr(flat) == repr(grouped)
    assert (grouped.label_weight, grouped.logit_weight, grouped.feature_weight, grouped.tau) == (0.1, 0.9, 0.1, 0.05)
    assert LabelTerm(weight=0.5).keywords() == {"label_weight": 0.5}
    with pytest.raises(ValueError, match="set both"):
        from_terms(teacher, student, LogitTerm(weight=0.9), logit_weight=0.5, clip_shape=TOY)
    with pytest.raises(ValueError, match="one term of each kind"):
        from_terms(teacher, student, LogitTerm(), LogitTerm(), clip_shape=TOY)


def test_the_registry_entries_keep_their_plain_call_form():
    z_s, z_t = torch.randn(4, 5), torch.randn(4, 5)
    torch.testing.assert_close(L.LOGIT_LOSSES["kd"](z_s, z_t, None), kd_loss(z_s, z_t))
    partial = functools.partial(L.LOGIT_LOSSES["dkd"], dkd_beta=2.0)
    torch.testing.assert_close(partial(z_s, z_t, None), dkd_loss(z_s, z_t, None, 1.0, 2.0))
