"""Programs built on the experiment harness: ``lorabar demo`` and ``lorabar bench``.

The layers point down: the core (``lorabar``) < ``lorabar.integrations`` <
``lorabar.harness`` (the engine) < ``lorabar.apps`` and ``lorabar.cli``.
"""
