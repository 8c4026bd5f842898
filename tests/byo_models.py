"""Models from the libraries users train with, built as a new user would (`tests/byo_models.py:NAME`).

Random initialisation from configs, nothing downloaded (`encoder_weights=None`, `weights=None`).
Small on purpose: resnet18 / mit_b0 encoders, and a SegFormer with B0's patch strides but one
block per stage, so that the real libraries' graphs export in seconds.
"""

from __future__ import annotations

from torch import nn

# The classes of segedge.data.shapes version 1, which the tests' labelled folders hold.
SHAPES = {0: "background", 1: "circle", 2: "square", 3: "triangle"}


def segformer() -> nn.Module:
    """Hugging Face SegFormer from a config: logits at 1/4, classes named by `id2label`."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    config = SegformerConfig(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128], decoder_hidden_size=64,
                             id2label=SHAPES, label2id={name: i for i, name in SHAPES.items()})
    return SegformerForSemanticSegmentation(config)


def smp_unet() -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.Unet("resnet18", encoder_weights=None, classes=4)


def smp_fpn() -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.FPN("resnet18", encoder_weights=None, classes=4)


def smp_deeplabv3plus() -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.DeepLabV3Plus("resnet18", encoder_weights=None, classes=4)


def smp_segformer() -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.Segformer("mit_b0", encoder_weights=None, classes=4)


def torchvision_deeplabv3() -> nn.Module:
    """torchvision's DeepLab v3 with its auxiliary head: forward returns {"out": ..., "aux": ...}."""
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    return deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=4, aux_loss=True)


def segformer_with_num_classes(num_classes: int = 4) -> nn.Module:
    """A builder that takes num_classes, as the README's example does."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    return SegformerForSemanticSegmentation(SegformerConfig(num_labels=num_classes, depths=[1, 1, 1, 1],
                                                            hidden_sizes=[16, 32, 64, 128], decoder_hidden_size=64))
