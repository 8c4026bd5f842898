"""What a model file is: the card, reading foreign files (inspection, ONNX info, probing), precision and graph summaries."""
