"""Programs built on the experiment harness: ``lorabar demo`` and ``lorabar bench``.

The layers point down: the core (``lorabar``) < ``lorabar.integrations`` <
``lorabar.experiments`` (the engine) < ``lorabar.apps`` and ``lorabar.cli``.
"""
