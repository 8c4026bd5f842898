"""A report's files are typed (precision, quantizer, repaired), and report.json names them as today's readers expect."""

from __future__ import annotations

import pytest

from segedge.report.rows import Variant
from segedge.report.run import _openvino_variants


@pytest.mark.parametrize("variant, name, runtime", [
    (Variant("fp32"), "fp32", "onnxruntime"),
    (Variant("int8", "ort"), "int8", "onnxruntime"),
    (Variant("int8", "nncf"), "int8-nncf", "openvino"),
    (Variant("int8", "ort", repaired=True), "int8-repaired", "onnxruntime"),
    (Variant("int8", "nncf", repaired=True), "int8-nncf-repaired", "openvino"),
])
def test_a_variant_is_named_and_made_for_its_runtime(variant, name, runtime):
    assert (variant.name, variant.runtime) == (name, runtime)


def test_openvino_rows_say_whose_quantizer_made_the_file():
    assert _openvino_variants(Variant("int8", "nncf"), None) == [(None, "CPU, NNCF IR")]
    assert _openvino_variants(Variant("int8", "ort", repaired=True), "f32") == [("f32", "CPU, ORT QDQ")]
    assert _openvino_variants(Variant("fp32"), None) == [("f32", "CPU f32"), ("bf16", "CPU bf16")]
    assert _openvino_variants(Variant("fp16"), "bf16") == [("bf16", "CPU bf16")]
