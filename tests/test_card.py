import dataclasses
import json

import pytest

from runtimes.model.card import CARD_KEY, ModelCard
from runtimes.errors import CardError
from runtimes.imaging.palette import VOC_CLASSES, voc_palette


def full_card() -> ModelCard:
    return ModelCard(
        name="deeplabv3plus_resnet50",
        architecture="deeplabv3plus",
        source="deeplabv3plus_resnet50",
        build_kwargs={"num_classes": 21, "output_stride": 16},
        classes=VOC_CLASSES,
        palette=voc_palette(21),
        color_order="BGR",
        mean=(0.5, 0.4, 0.3),
        std=(0.2, 0.25, 0.3),
        scale=1 / 255,
        input_size=(512, 384),
        dynamic=False,
        size_divisor=16,
        valid_margin=0,
        output_kind="logits",
        tile_size=512,
        tile_overlap=64,
        precision="int8",
        opset=18,
        exporter="dynamo",
        segedge_version="0.1.0",
        parity={"sizes": [{"size": [512, 384], "max_abs": 1e-6}]},
        calibration={"images": 32, "method": "minmax"},
    )


def test_round_trip_is_exact():
    card = full_card()
    text = card.to_json()
    back = ModelCard.from_json(text)
    assert back == card
    assert back.to_json() == text
    assert isinstance(back.palette[3], tuple) and back.palette[3] == (128, 128, 0)


def test_every_field_survives_round_trip():
    card = full_card()
    back = ModelCard.from_json(card.to_json())
    for f in dataclasses.fields(ModelCard):
        assert getattr(back, f.name) == getattr(card, f.name), f.name


def test_unknown_fields_from_newer_versions_are_ignored():
    data = json.loads(full_card().to_json())
    data["field_from_the_future"] = 1
    assert ModelCard.from_dict(data) == full_card()


@pytest.mark.parametrize(
    "text, message",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ("{}", "has no 'name'"),
        ('{"name": "x", "mean": [1, 2]}', "'mean' must be three"),
        ('{"name": "x", "std": [1, 0, 1]}', "'std' must not contain 0"),
        ('{"name": "x", "output_kind": "softmax"}', "'output_kind'"),
        ('{"name": "x", "input_size": [0, 5]}', "'input_size'"),
        ('{"name": "x", "palette": [[0, 0, 300]]}', "'palette'"),
        ('{"name": "x", "classes": "abc", "input_size": 5}', "invalid model card"),
    ],
)
def test_invalid_cards_raise_card_error(text, message):
    with pytest.raises(CardError, match=message):
        ModelCard.from_json(text)


def test_overrides_replace_only_given_fields():
    card = full_card().with_overrides(mean=(0.0, 0.0, 0.0), std=None)
    assert card.mean == (0.0, 0.0, 0.0)
    assert card.std == full_card().std
    with pytest.raises(CardError, match="unknown model card field"):
        full_card().with_overrides(colour="red")


def test_foreign_model_card_gets_default_classes():
    card = ModelCard.for_foreign_model("theirs", num_classes=3, mean=(0.5, 0.5, 0.5))
    assert card.classes == ("class_0", "class_1", "class_2")
    assert card.mean == (0.5, 0.5, 0.5)
    assert len(card.colors()) >= 3


def test_card_key_is_namespaced():
    assert CARD_KEY == "segedge.card"
