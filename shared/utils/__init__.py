"""The bottom layer: helpers every other layer may use (strict configs, atomic JSON, seeding, devices).

Imports nothing from the rest of ``shared``.
"""
