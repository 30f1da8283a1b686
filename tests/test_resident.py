"""Resident views: fixed views read once into one tensor, batches drawn by index, bit for bit the
DataLoader's batches, and a student trained on them ends with the same weights."""

import pytest
import torch
from torch.utils.data import DataLoader

from kdlab.resident import BUDGET_VARIABLE, ResidentLoader, ResidentViews, resident_loader
from kdlab.runtime import epoch_seed, seed_everything
from kdlab.students import weak_training_set
from kdlab.train import _loader, fit

from toydata import tiny_splits, tiny_student


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return tiny_splits(tmp_path_factory.mktemp("resident"))


def epochs_of(loader, epochs=2, seed=3):
    """Every batch of ``epochs`` epochs, reseeded as fit reseeds them."""
    out = []
    for epoch in range(epochs):
        seed_everything(epoch_seed(seed, epoch))
        loader.generator.manual_seed(epoch_seed(seed, epoch))
        iter(loader)  # a discarded iterator, as tqdm's asyncio variant makes one: it draws from the generator
        out += [tuple(t.clone() for t in batch) for batch in loader]
    return out


def test_batches_are_the_dataloaders_bit_for_bit(splits):
    data = weak_training_set(splits, views=3)
    plain = _loader(data, 8, True, 3, 0, 1, 0, drop_last=True)
    resident = resident_loader(data, 8, 3, True, torch.device("cpu"))
    assert isinstance(resident, ResidentLoader) and len(resident) == len(plain) == len(data) // 8
    assert isinstance(resident, DataLoader) and resident.dataset is data  # what objectives read (probe clips)
    expected, got = epochs_of(plain), epochs_of(resident)
    assert len(expected) == len(got) == 2 * len(plain)
    for a, b in zip(expected, got):
        assert len(a) == len(b) == 4  # clip, label (-1 when unlabelled), video index, view
        assert all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b))
    labels = torch.cat([b[1] for b in got])
    assert (labels == -1).any() and (labels >= 0).any()
    assert len(set(torch.cat([b[3] for b in got]).tolist())) == 3  # every view is drawn


def test_each_view_keeps_its_own_clip_and_label(splits):
    data = weak_training_set(splits, views=2)
    bank = ResidentViews(data)
    views = data.base
    for p in (0, len(bank) - 1):
        i = int(bank.index[p])
        assert i == data.indices[p]
        for v in range(2):
            clip, label, index = views.view(i, v)[:3]
            assert torch.equal(bank.clips[p, v], clip) and index == i
            assert int(bank.labels[p, v]) == (label if i in data.keep else -1)


def test_a_student_trained_on_resident_views_ends_with_the_same_weights(splits, monkeypatch):
    data = weak_training_set(splits, views=2)

    def train():
        model = tiny_student(splits.num_classes)
        history = fit(model, data, splits.val_set(), epochs=2, batch_size=8, seed=1, progress=False)
        return model, history

    monkeypatch.setenv(BUDGET_VARIABLE, "0")  # off: the item-by-item DataLoader
    plain, plain_history = train()
    monkeypatch.delenv(BUDGET_VARIABLE)
    resident, resident_history = train()
    assert all(torch.equal(v, resident.state_dict()[k]) for k, v in plain.state_dict().items())
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h.records]  # noqa: E731
    assert strip(plain_history) == strip(resident_history)


def test_the_memory_budget_decides_and_a_bad_one_is_named(splits, monkeypatch):
    data = weak_training_set(splits, views=2)
    clip_bytes = data.base.view(data.indices[0], 0)[0].numel() * 4
    monkeypatch.setenv(BUDGET_VARIABLE, str(len(data) * 2 * clip_bytes / 2**20 * 0.99))
    assert resident_loader(data, 8, 0, True, torch.device("cpu")) is None
    monkeypatch.setenv(BUDGET_VARIABLE, str(len(data) * 2 * clip_bytes / 2**20 * 1.01))
    assert resident_loader(data, 8, 0, True, torch.device("cpu")) is not None
    assert resident_loader(splits.weak_set(), 8, 0, True, torch.device("cpu")) is None  # fresh clips: not fixed
    assert resident_loader(data, 8, 0, True, torch.device("cpu"), world=2) is None  # torchrun shards the data
    monkeypatch.setenv(BUDGET_VARIABLE, "lots")
    with pytest.raises(ValueError, match=BUDGET_VARIABLE):
        resident_loader(data, 8, 0, True, torch.device("cpu"))
