"""kdlab export: the student alone, as torch.export (.pt2) or ONNX, with its parity on the test split."""

import json

import pytest
import torch

from kdlab.cli import main
from kdlab.data import VideoFolder
from kdlab.export import find_student

from toydata import tiny_videos

CLASSES = ["MoveLeft", "MoveRight", "Grow"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny_videos(tmp_path_factory.mktemp("export"), train_per_class=4, test_per_class=3, classes=CLASSES)


@pytest.fixture(scope="module")
def trained(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "train"
    assert main(["train", "--data", str(root), "--out", str(out), "--labels", "all", "--epochs", "1",
                 "--batch-size", "4"]) == 0
    return out


@pytest.fixture(autouse=True)
def quiet(monkeypatch, tmp_path):
    monkeypatch.setenv("KDLAB_PROGRESS", "0")
    monkeypatch.setenv("KDLAB_RUNS", str(tmp_path / "runs"))


def check_parity(path, out, n_test):
    record = json.loads(path.with_name(path.name + ".parity.json").read_text())
    assert record["clips"] == n_test and record["max_abs_logit_diff"] < 1e-4 and record["top1_agreement"] == 100.0
    assert record["top1_pytorch"] == record["top1_export"]
    assert "top-1 agreement 100.0%" in out and str(path) in out
    return record


def test_pt2_export_matches_the_student(trained, root, capsys):
    assert main(["export", str(trained), "--format", "pt2"]) == 0
    path = trained / "export" / "student.pt2"
    record = check_parity(path, capsys.readouterr().out, n_test=9)
    assert record["arch"]["kind"] == "videonet" and record["checkpoint"].endswith("checkpoint.pt")
    student, _ = find_student(trained)
    program = torch.export.load(str(path)).module()
    clips = torch.stack([VideoFolder(root, "test", progress=False)[i][0] for i in range(5)])  # another batch size
    with torch.no_grad():
        assert torch.allclose(program(clips), student(clips), atol=1e-5)


def test_onnx_export_matches_the_student(trained, capsys):
    for name in ("onnx", "onnxscript"):
        pytest.importorskip(name, reason=f"the ONNX export needs the optional package {name}: pip install 'kdlab[export]'")
    ort = pytest.importorskip("onnxruntime", reason="the parity check needs onnxruntime: pip install 'kdlab[export]'")
    out = trained.parent / "elsewhere" / "model.onnx"
    assert main(["export", str(trained), "--format", "onnx", "--out", str(out)]) == 0
    check_parity(out, capsys.readouterr().out, n_test=9)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["clips"] and [o.name for o in session.get_outputs()] == ["logits"]
    assert session.get_inputs()[0].shape[1:] == [3, 8, 32, 32]  # batch is dynamic


def test_a_distilled_student_is_found_in_fit(root, tmp_path, capsys):
    out = tmp_path / "distill"
    assert main(["distill", "--data", str(root), "--out", str(out), "--method", "scratch", "--views", "0",
                 "--epochs", "1", "--batch-size", "4", "--budget", "50", "--model", "student-small"]) == 0
    assert main(["export", str(out), "--format", "pt2"]) == 0
    record = check_parity(out / "export" / "student.pt2", capsys.readouterr().out, n_test=9)
    assert record["checkpoint"] == str(out / "fit" / "checkpoint.pt") and record["arch"]["spec"]["widths"] == [4, 6, 12, 24]


def test_what_cannot_be_exported_is_one_line(trained, tmp_path, capsys):
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty")]) == 2
    assert "is not a kdlab output folder" in capsys.readouterr().err
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text(json.dumps({"kind": "skd"}))
    assert main(["export", str(unfinished)]) == 2
    assert "unfinished skd run" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "checkpoint.pt").write_bytes(b"not a checkpoint")
    (broken / "report.json").write_text(json.dumps({"config": {}}))
    assert main(["export", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt could not be read" in err and err.count("\n") == 1


def test_the_student_of_a_cascade_is_its_last_rung(root, tmp_path):
    from kdlab.models import build_model
    from kdlab.runs import save_model

    run = tmp_path / "skd"
    torch.manual_seed(0)
    rungs = [build_model("assistant", 3), build_model("student", 3)]
    for k, model in enumerate(rungs, start=1):
        save_model(run / "cascade" / f"rung-{k}", model, {"rung": k})
    (run / "config.json").write_text(json.dumps({"kind": "skd", "data": str(root), "frames": 8, "size": 32}))
    (run / "report.json").write_text(json.dumps({"rungs": [{"name": "teacher"}, {"name": "assistant"},
                                                          {"name": "student"}]}))
    student, where = find_student(run)
    assert where == {"checkpoint": str(run / "cascade" / "rung-2" / "model.pt"), "data": str(root), "frames": 8,
                     "size": 32}
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), rungs[1].state_dict().values()))
