"""The worked examples in the docstrings of the generated-answer modules hold."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["qa.verify", "qa.llm", "qa.prompt", "qa.generate", "qa.eval.generative"])
def test_docstring_examples_hold(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
