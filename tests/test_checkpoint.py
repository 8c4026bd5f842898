"""Checkpoints are loaded with weights_only=True, and every way they can be wrong reads clearly."""

import os
import pickle
import zipfile

import pytest
import torch

from exporters.checkpoint import fit_state_dict, load_state_dict
from runtimes.errors import CheckpointError
from tests.tiny_models import TinySegNet, build


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.pt"
    torch.save(build().state_dict(), path)
    return path


def test_good_checkpoint_loads_and_fits(good):
    model = TinySegNet(4)
    notes = fit_state_dict(model, load_state_dict(good), "tiny")
    assert notes == []
    for key, value in build().state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_wrapped_training_checkpoint_is_unwrapped(tmp_path):
    path = tmp_path / "train.pt"
    torch.save({"epoch": 3, "state_dict": build().state_dict()}, path)
    assert set(load_state_dict(path)) == set(build().state_dict())


def test_aux_keys_are_ignored_with_a_note():
    state = dict(build().state_dict())
    state["aux_classifier.4.weight"] = torch.zeros(4, 8, 1, 1)
    notes = fit_state_dict(TinySegNet(4), state, "tiny")
    assert notes and "aux_classifier" in notes[0]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"this is not a checkpoint", "cannot be read"),
        (b"PK\x03\x04 truncated zip", "cannot be read"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_state_dict(path)


def test_truncated_checkpoint(good, tmp_path):
    data = good.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_state_dict(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_state_dict(tmp_path / "nope.pt")


def test_pickled_module_is_refused(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(build(), path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_state_dict(path)


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_code_in_a_pickle_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    Payload.marker = marker
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(1), "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_state_dict(path)
    assert not marker.exists()


def test_raw_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "raw.pkl"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError):
        load_state_dict(path)
    assert zipfile.is_zipfile(path) is False


def test_another_networks_keys(tmp_path):
    state = {"encoder.weight": torch.zeros(3), "decoder.bias": torch.zeros(2)}
    with pytest.raises(CheckpointError, match=r"11 missing keys \(stem.0.weight.*2 unexpected keys \(encoder.weight"):
        fit_state_dict(TinySegNet(4), state, "tiny")


def test_module_prefix_is_explained():
    state = {f"module.{k}": v for k, v in build().state_dict().items()}
    with pytest.raises(CheckpointError, match="'module.' prefix"):
        fit_state_dict(TinySegNet(4), state, "tiny")


def test_wrong_class_count_names_tensor_and_shapes():
    state = build(num_classes=21).state_dict()
    with pytest.raises(CheckpointError, match=r"classifier.weight has shape \[21, 16, 1, 1\] in the checkpoint but \[4, 16, 1, 1\].*--num-classes"):
        fit_state_dict(TinySegNet(4), state, "tiny")


def test_non_tensor_entries_are_refused(tmp_path):
    path = tmp_path / "mixed.pt"
    torch.save({"weight": torch.zeros(1), "lr": 0.1}, path)
    with pytest.raises(CheckpointError, match="not a tensor"):
        load_state_dict(path)
