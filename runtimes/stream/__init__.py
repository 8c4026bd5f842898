"""Video files, streams and cameras: frames in (PyAV, imported lazily), overlapped stages, videos out.

`sources` decodes, `writers` encodes, `pipeline` runs stages in threads joined by bounded queues,
`labelling` puts a Predictor's steps on those stages. Nothing here imports torch.
"""
