"""The bottom layer: helpers every other layer may use. Imports nothing from the rest of ``shared``.

- config   ``StrictConfig`` / ``from_dict``: dataclasses built strictly from plain dicts
- io       ``write_json_atomic``, ``write_text_atomic``, ``read_json``, ``to_jsonable``
- runtime  ``seed_everything``, ``default_device``
"""
