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


# -- checkpoints as training frameworks save them ------------------------------------------------
def _same_weights(model, state) -> bool:
    return all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("prefix, who", [
    ("module.", "DataParallel"),
    ("model.", "Lightning"),
    ("_orig_mod.", "torch.compile"),
    ("module.model.", "DataParallel"),
    ("backbone.", ""),
])
def test_a_uniform_key_prefix_is_stripped_with_a_note(prefix, who):
    state = build().state_dict()
    model = TinySegNet(4)
    notes = fit_state_dict(model, {prefix + k: v for k, v in state.items()}, "tiny")
    assert len(notes) == 1 and notes[0].startswith(f"stripped the prefix '{prefix}' from every checkpoint key")
    assert who in notes[0]
    assert _same_weights(model, state)


def test_the_models_own_prefix_is_added_with_a_note():
    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = TinySegNet(4)

    state = build().state_dict()
    model = Wrapped()
    assert fit_state_dict(model, state, "wrapped") == [
        "added the prefix 'net.' to every checkpoint key (the model keeps these weights under it)"]
    assert _same_weights(model.net, state)


@pytest.mark.parametrize("layout, where", [
    (lambda sd: {"epoch": 7, "state_dict": sd, "optimizer_states": [{}]}, "checkpoint['state_dict']"),
    (lambda sd: {"model": sd, "optimizer": {"state": {}}, "args": "..."}, "checkpoint['model']"),
    (lambda sd: {"net": sd}, "checkpoint['net']"),
    (lambda sd: {"meta": {"epoch": 2}, "ema": {"module": sd}}, "checkpoint['ema']['module']"),
])
def test_nested_training_checkpoints_are_unwrapped_with_a_note(tmp_path, layout, where):
    state = build().state_dict()
    path = tmp_path / "train.pt"
    torch.save(layout(state), path)
    model = TinySegNet(4)
    notes = fit_state_dict(model, load_state_dict(path), "tiny")
    assert notes[0].startswith(f"loaded the weights at {where}")
    assert _same_weights(model, state)


def test_the_trained_weights_are_taken_before_their_moving_average(tmp_path):
    state, ema = build().state_dict(), {k: v + 1 for k, v in build().state_dict().items()}
    path = tmp_path / "timm.pt"
    torch.save({"state_dict": state, "state_dict_ema": ema}, path)
    model = TinySegNet(4)
    notes = fit_state_dict(model, load_state_dict(path), "tiny")
    assert notes == [("loaded the weights at checkpoint['state_dict'] (not their moving average, "
                      "'state_dict_ema': save that alone to export it)")]
    assert _same_weights(model, state)


def test_lightning_checkpoint_with_its_prefix_is_loaded(tmp_path):
    state = build().state_dict()
    path = tmp_path / "epoch=3.ckpt"
    torch.save({"epoch": 3, "global_step": 90, "state_dict": {f"model.{k}": v for k, v in state.items()}}, path)
    model = TinySegNet(4)
    notes = fit_state_dict(model, load_state_dict(path), "tiny")
    assert notes[0] == "loaded the weights at checkpoint['state_dict']"
    assert notes[1].startswith("stripped the prefix 'model.'")
    assert _same_weights(model, state)


def test_a_prefix_beside_other_keys_is_refused_naming_the_fix():
    state = {f"model.{k}": v for k, v in build().state_dict().items()}
    state["criterion.weight"] = torch.ones(4)
    with pytest.raises(CheckpointError) as refused:
        fit_state_dict(TinySegNet(4), state, "tiny")
    message = str(refused.value)
    assert "\n" not in message
    assert "the weights under 'model.' fit once that prefix is stripped, but 1 other keys (criterion.weight)" in message
    assert "save the inner model's state_dict() alone" in message


def test_weights_under_an_unknown_key_are_refused_naming_it(tmp_path):
    path = tmp_path / "distill.pt"
    torch.save({"student": build().state_dict(), "epoch": 3}, path)
    with pytest.raises(CheckpointError, match=r"under 'student': save the one you mean alone, "
                                              r"e.g. torch.save\(checkpoint\['student'\], 'weights.pt'\)"):
        load_state_dict(path)


def test_wrong_class_count_names_tensor_and_shapes():
    state = build(num_classes=21).state_dict()
    with pytest.raises(CheckpointError, match=r"classifier.weight has shape \[21, 16, 1, 1\] in the checkpoint but \[4, 16, 1, 1\].*--num-classes"):
        fit_state_dict(TinySegNet(4), state, "tiny")


def test_non_tensor_entries_are_refused(tmp_path):
    path = tmp_path / "mixed.pt"
    torch.save({"weight": torch.zeros(1), "lr": 0.1}, path)
    with pytest.raises(CheckpointError, match="not a tensor"):
        load_state_dict(path)
