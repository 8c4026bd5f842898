"""A web export run in a real browser (headless Chromium): `segedge bench --compare web` and `report`'s web row."""
