"""What a model weighs on disk: every file of it."""

from __future__ import annotations

from runtimes.model.onnx_info import model_files, model_megabytes


def test_an_ir_weighs_its_xml_and_its_bin(tmp_path):
    xml, weights = tmp_path / "m.xml", tmp_path / "m.bin"
    xml.write_text('<?xml version="1.0"?>\n<net name="m" version="11"></net>\n')
    weights.write_bytes(b"\0" * 2**20)
    assert model_files(xml) == [xml, weights]
    assert abs(model_megabytes(xml) - (xml.stat().st_size + 2**20) / 2**20) < 1e-9 and model_megabytes(xml) > 1.0


def test_an_onnx_file_weighs_itself(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\0" * 2**19)
    assert model_files(model) == [model] and model_megabytes(model) == 0.5
