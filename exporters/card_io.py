"""Writing the model card into an ONNX file's metadata (reading it is `runtimes.backends.onnxruntime_session.read_card`)."""

from __future__ import annotations

import onnx

from runtimes.model.card import CARD_KEY, ModelCard


def embed_card(model: onnx.ModelProto, card: ModelCard) -> onnx.ModelProto:
    """Set (or replace) the card in `model.metadata_props`, in place; returns `model`."""
    kept = [p for p in model.metadata_props if p.key != CARD_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=CARD_KEY, value=card.to_json())
    return model


def read_card_from_proto(model: onnx.ModelProto) -> ModelCard | None:
    for prop in model.metadata_props:
        if prop.key == CARD_KEY:
            return ModelCard.from_json(prop.value)
    return None
