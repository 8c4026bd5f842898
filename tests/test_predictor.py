"""Predictor: any input kind and size in, a label map of the input's size out; one-channel models,
card overrides, valid-mode U-Net, batches and threads."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from runtimes import Predictor
from runtimes.model.card import IMAGENET_MEAN, IMAGENET_STD
from runtimes.errors import CardError, ModelFileError, ProviderError, UsageError
from tests.predictor_models import PALETTE, scene


def reference_logits(path, image, mean=IMAGENET_MEAN, std=IMAGENET_STD, divisor=8, bgr=False):
    """What the Predictor should compute, written independently: numpy's reflect pad, ORT, crop."""
    h, w = image.shape[:2]
    x = (image.astype(np.float64) / 255.0 - mean) / std
    if bgr:
        x = x[:, :, ::-1]
    x = np.pad(x, ((0, -h % divisor), (0, -w % divisor), (0, 0)), mode="reflect")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"image": x.transpose(2, 0, 1)[None].astype(np.float32)})[0][0]
    return out[:, :h, :w]


@pytest.fixture(scope="module")
def multiclass(predictor_models):
    return Predictor(predictor_models.multiclass)


@pytest.mark.parametrize("size", [(1, 1), (1, 4097), (513, 1025), (7, 3), (8, 8), (2, 2)])
def test_label_map_has_the_input_size_and_matches_an_independent_reference(predictor_models, multiclass, size):
    image = scene(*size, seed=size[0])
    labels = multiclass.predict(image)
    assert labels.shape == size and labels.dtype == np.uint8
    if min(size) > 1:  # numpy cannot reflect-pad a side of one pixel
        expected = reference_logits(predictor_models.multiclass, image).argmax(axis=0)
        assert (labels == expected).mean() >= 0.9999


def test_predictions_are_not_trivial(multiclass):
    assert len(np.unique(multiclass.predict(scene(200, 300)))) >= 3


def test_path_pil_and_array_inputs_agree(tmp_path, multiclass):
    image = scene(61, 83)
    path = tmp_path / "scene.png"
    Image.fromarray(image).save(path)
    expected = multiclass.predict(image)
    for source in (path, str(path), Image.fromarray(image), Image.fromarray(image).convert("RGBA")):
        np.testing.assert_array_equal(multiclass.predict(source), expected)


@pytest.mark.parametrize(
    "convert",
    [
        lambda im: im.astype(np.uint16) * 257,  # 16 bit
        lambda im: im.astype(np.float32) / 255.0,  # float in 0..1
        lambda im: np.concatenate([im, np.full(im.shape[:2] + (1,), 9, np.uint8)], axis=2),  # RGBA
    ],
    ids=["uint16", "float", "rgba"],
)
def test_every_depth_gives_the_same_probabilities(multiclass, convert):
    image = scene(45, 67)
    np.testing.assert_allclose(multiclass.predict_proba(convert(image)), multiclass.predict_proba(image), atol=1e-5)


def test_greyscale_array_is_segmented_as_grey_rgb(multiclass):
    grey = scene(30, 40)[:, :, 1]
    np.testing.assert_array_equal(multiclass.predict(grey), multiclass.predict(np.repeat(grey[:, :, None], 3, axis=2)))


def test_probabilities_sum_to_one_and_agree_with_labels(multiclass):
    image = scene(77, 91)
    probs = multiclass.predict_proba(image)
    assert probs.shape == (4, 77, 91) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    assert (probs.argmax(axis=0) == multiclass.predict(image)).mean() >= 0.9999


def test_predict_batch_equals_one_by_one(multiclass):
    images = [scene(40, 56, 1), scene(33, 57, 2), scene(40, 56, 3), scene(1, 9, 4), scene(40, 56, 5), scene(120, 20, 6)]
    batched = multiclass.predict_batch(images)
    assert len(batched) == len(images)
    for image, labels in zip(images, batched):
        np.testing.assert_array_equal(labels, multiclass.predict(image))


def test_resize_long_keeps_the_output_at_the_input_size(predictor_models):
    predictor = Predictor(predictor_models.multiclass, resize_long=150)
    image = np.full((150, 301, 3), 90, np.uint8)
    image[10:80, 20:150] = (255, 0, 0)
    image[60:140, 120:290] = (0, 255, 0)
    image[100:150, 0:100] = (0, 0, 255)
    labels = predictor.predict(image)
    assert labels.shape == (150, 301)
    assert predictor.predict_proba(image).shape == (4, 150, 301)
    # Halving large shapes keeps most pixels' class.
    assert (labels == Predictor(predictor_models.multiclass).predict(image)).mean() > 0.9
    assert Predictor(predictor_models.multiclass, resize_long=40).predict(scene(1, 1)).shape == (1, 1)


# -- card overrides (models exported elsewhere) ----------------------------------------------------
def test_model_without_card_runs_with_defaults_and_overrides(predictor_models, multiclass):
    image = scene(50, 64)
    bare = Predictor(predictor_models.no_card)
    assert bare.card.name == "no_card" and bare.card.size_divisor == 1
    # The same network: with its card's size divisor given, the results are the same.
    np.testing.assert_array_equal(Predictor(predictor_models.no_card, size_divisor=8).predict(image), multiclass.predict(image))
    named = Predictor(predictor_models.no_card, classes=["a", "b", "c", "d"], palette=[[1, 2, 3]])
    assert named.card.classes == ("a", "b", "c", "d") and named.card.palette == ((1, 2, 3),)


def test_colour_order_and_normalisation_overrides(predictor_models):
    image = scene(64, 80)
    bgr_card = Predictor(predictor_models.bgr)  # card: BGR, mean 0.5, std 0.25
    overridden = Predictor(predictor_models.no_card, color_order="BGR", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    expected = reference_logits(predictor_models.no_card, image, mean=0.5, std=0.25, bgr=True).argmax(axis=0)
    np.testing.assert_array_equal(overridden.predict(image), bgr_card.predict(image))
    assert (bgr_card.predict(image) == expected).mean() >= 0.9999
    assert not np.array_equal(bgr_card.predict(image), Predictor(predictor_models.no_card).predict(image))


def test_unknown_or_invalid_override_is_a_card_error(predictor_models):
    with pytest.raises(CardError, match="unknown model card field.*colour_order"):
        Predictor(predictor_models.multiclass, colour_order="BGR")
    with pytest.raises(CardError, match="std"):
        Predictor(predictor_models.multiclass, std=(0, 1, 1))
    with pytest.raises(CardError, match="unknown model card field.*colour_order"):
        Predictor(predictor_models.no_card, colour_order="BGR")


def test_wrong_valid_margin_is_reported_not_miscropped(predictor_models):
    predictor = Predictor(predictor_models.no_card, valid_margin=2)
    with pytest.raises(ModelFileError, match="valid_margin"):
        predictor.predict(scene(20, 20))


# -- one-channel models ----------------------------------------------------------------------------
def test_one_channel_models_give_binary_masks(predictor_models):
    image = scene(70, 90)
    sigmoid, logit = Predictor(predictor_models.sigmoid), Predictor(predictor_models.logit)
    mask = sigmoid.predict(image)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    np.testing.assert_array_equal(logit.predict(image), mask)
    probs = sigmoid.predict_proba(image)
    assert probs.shape == (2, 70, 90)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(logit.predict_proba(image), probs, atol=1e-5)
    np.testing.assert_array_equal(mask, probs[1] > 0.5)


def test_threshold_moves_the_mask(predictor_models):
    image = scene(70, 90)
    probs = Predictor(predictor_models.logit).predict_proba(image)[1]
    for threshold in (0.1, 0.9):
        mask = Predictor(predictor_models.logit, threshold=threshold).predict(image)
        np.testing.assert_array_equal(mask, probs > threshold)
    low = Predictor(predictor_models.sigmoid, threshold=0.1).predict(image).sum()
    high = Predictor(predictor_models.sigmoid, threshold=0.9).predict(image).sum()
    assert low > high


def test_one_channel_output_needs_a_binary_output_kind(predictor_models):
    with pytest.raises(CardError, match="one channel.*sigmoid"):
        Predictor(predictor_models.sigmoid, output_kind="logits").predict(scene(8, 8))
    with pytest.raises(CardError, match="one-channel models"):
        Predictor(predictor_models.multiclass, output_kind="sigmoid").predict(scene(8, 8))


# -- valid-mode U-Net --------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(1, 1), (5, 250), (188, 189), (37, 20)])
def test_valid_unet_output_has_the_input_size(predictor_models, size):
    if predictor_models.unet_valid is None:
        pytest.skip("segedge.models.unet is not there")
    predictor = Predictor(predictor_models.unet_valid)
    labels = predictor.predict(scene(*size))
    assert labels.shape == size


def test_valid_unet_sees_the_image_mirrored_by_its_margin(predictor_models):
    if predictor_models.unet_valid is None:
        pytest.skip("segedge.models.unet is not there")
    from segedge.models.unet import unet_valid_input_size

    image = scene(50, 70)
    h, w = 50, 70
    margin = 92
    extra_h, extra_w = unet_valid_input_size(h + 2 * margin) - h - 2 * margin, unet_valid_input_size(w + 2 * margin) - w - 2 * margin
    x = (image / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    # The image mirrored by the margin on every side, and further at the end up to a valid size.
    # (U-Net's receptive field, 215 px, is wider than its margin: the mirroring beyond it matters.)
    x = np.pad(x, ((margin, margin + extra_h), (margin, margin + extra_w), (0, 0)), mode="reflect")
    session = ort.InferenceSession(str(predictor_models.unet_valid), providers=["CPUExecutionProvider"])
    out = session.run(None, {"image": x.transpose(2, 0, 1)[None].astype(np.float32)})[0][0]
    expected = out[:, :h, :w]
    np.testing.assert_allclose(Predictor(predictor_models.unet_valid).predict_proba(image),
                               np.exp(expected) / np.exp(expected).sum(axis=0), atol=1e-5)


# -- threads, providers, errors -----------------------------------------------------------------------
@pytest.mark.parametrize("tiled", [False, True])
def test_eight_threads_sharing_one_predictor_get_the_serial_results(predictor_models, tiled):
    predictor = Predictor(predictor_models.multiclass, threads=1, tile_size=64 if tiled else None)
    images = [scene(40 + 7 * i, 90 - 5 * i, seed=i) for i in range(16)]
    serial = [predictor.predict(image) for image in images]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            parallel = list(pool.map(predictor.predict, images))
            for a, b in zip(serial, parallel):
                np.testing.assert_array_equal(a, b)


def test_providers_are_checked(predictor_models):
    assert Predictor(predictor_models.multiclass, "cpu").providers == ("CPUExecutionProvider",)
    with pytest.raises(ProviderError, match="unknown provider"):
        Predictor(predictor_models.multiclass, "tpu")


def test_bad_model_and_options_raise_typed_errors(tmp_path, predictor_models):
    with pytest.raises(ModelFileError, match="not found"):
        Predictor(tmp_path / "missing.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    with pytest.raises(ModelFileError, match="broken.onnx"):
        Predictor(broken)
    for bad in ({"batch_size": 0}, {"threshold": 1.5}, {"resize_long": 0}):
        with pytest.raises(UsageError):
            Predictor(predictor_models.multiclass, **bad)


def test_card_palette_is_the_models(multiclass):
    assert multiclass.card.colors()[:4] == PALETTE
