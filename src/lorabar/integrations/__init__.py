"""Integrations with training frameworks (imported lazily; they need the ``hf`` extra)."""
