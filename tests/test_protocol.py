"""The label-leak guard (kdlab.protocol): a teacher records whose labels trained it, and teaching
the videos it has seen the labels of warns; the notebooks and the benchmark never do it."""

import json
import re
import warnings
from pathlib import Path

import pytest

from kdlab.teachers import get_teacher
from kdlab.models import build_model
from kdlab.protocol import LabelLeakWarning, check_teacher, labels_seen, leaked_videos, mark_teacher
from kdlab.pseudo.recipe import teacher_pseudo_labels
from kdlab.students import distill_student
from toydata import tiny_splits

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return tiny_splits(tmp_path_factory.mktemp("protocol"))


def videos(splits, indices):
    return [splits.train.samples[i][0] for i in indices]


def marked(splits, indices, protocol="all"):
    model = build_model("student", splits.num_classes)
    return mark_teacher(model, labels_seen(splits.root.name, videos(splits, indices), protocol))


def test_a_teacher_that_saw_every_label_leaks_exactly_the_unlabelled_videos(splits):
    teacher = marked(splits, splits.labelled + splits.unlabelled)
    assert leaked_videos(teacher, splits) == sorted(videos(splits, splits.unlabelled))
    with pytest.warns(LabelLeakWarning, match=r"protocol 'all'.*labels of %d of the %d videos" %
                      (len(splits.unlabelled), len(splits.unlabelled))):
        check_teacher(teacher, splits)


def test_a_teacher_of_the_budget_or_of_another_dataset_or_without_a_record_does_not_leak(splits):
    budget_only = marked(splits, splits.labelled, "labelled")
    other_dataset = mark_teacher(build_model("student", splits.num_classes),
                                 labels_seen("simmotion-source", videos(splits, splits.unlabelled), "pretrained"))
    no_record = build_model("student", splits.num_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for teacher in (budget_only, other_dataset, no_record, None):
            assert check_teacher(teacher, splits) == []


def test_allowing_the_leak_silences_the_warning_but_still_reports_it(splits):
    teacher = marked(splits, splits.unlabelled[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_teacher(teacher, splits, allow_label_leak=True) == sorted(videos(splits, splits.unlabelled[:3]))


def test_get_teacher_records_the_labels_it_trained_on_and_distillation_warns(splits, tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_RUNS", str(tmp_path))
    teacher_all, info_all = get_teacher("all", splits, epochs=1, progress=False)
    assert info_all["labels_seen"]["protocol"] == "all"
    assert info_all["labels_seen"]["videos"] == sorted(videos(splits, splits.labelled + splits.unlabelled))
    teacher_lab, info_lab = get_teacher("labelled", splits, epochs=1, progress=False)
    assert info_lab["labels_seen"]["videos"] == sorted(videos(splits, splits.labelled))

    with pytest.warns(LabelLeakWarning, match="protocol 'all'"):
        distill_student("kd", splits, teacher_all, epochs=1, progress=False)
    with pytest.warns(LabelLeakWarning, match="pseudo-labelling"):
        teacher_pseudo_labels(teacher_all, splits, clips=1, knn=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabelLeakWarning)
        distill_student("kd", splits, teacher_lab, epochs=1, progress=False)
        # loaded again from the run cache, the teacher still carries its record
        again, _ = get_teacher("all", splits, epochs=1, progress=False)
        assert leaked_videos(again, splits) == leaked_videos(teacher_all, splits) != []


def _code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


TEACHES = re.compile(r"\b(distill_student|cascade|teacher_pseudo_labels|run_benchmark)\(")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_teaches_with_a_teacher_that_saw_the_unlabelled_labels(notebook):
    """Every notebook that distils or pseudo-labels takes its teachers from a protocol that never saw
    the unlabelled videos' labels (``"all"`` only where the leak is demonstrated on purpose)."""
    code = _code(notebook)
    if not TEACHES.search(code):
        return
    protocols = re.findall(r"get_teacher\(\s*[\"'](\w+)[\"']", code)
    if "allow_label_leak=True" not in code:
        assert "all" not in protocols, f"{notebook.name} distils from get_teacher('all')"


def test_the_pretrained_teacher_pretrains_on_the_whole_source_corpus_whatever_the_target_pool(tmp_path, monkeypatch):
    """A target pool (the benchmark's small-pool regime) must not shrink the *source* corpus."""
    import kdlab.teachers as teachers
    from kdlab.weak_splits import DataConfig, Splits

    monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "data"))
    source_root = teachers.default_dataset(domain="source", progress=False)
    seen = {}

    def fake_train(model_name, train_set, splits, *, kind, **kwargs):
        seen[kind] = (splits, len(train_set))
        return build_model("student", splits.num_classes), {"test_top1": 0.0, "epochs": 1, "labels_seen": None}

    monkeypatch.setattr(teachers, "train_classifier", fake_train)
    target = Splits(DataConfig(root=str(source_root), pool=5), progress=False)  # any dataset with a pool
    get_teacher("pretrained", target, progress=False)
    source, n = seen["teacher-source"]
    assert source.cfg.pool is None and n == len(source.labelled) + len(source.unlabelled) > 10 * 5
    assert seen["teacher-pretrained"][1] == len(target.labelled)
