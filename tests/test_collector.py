"""The garbage collector around start-up imports (bench.core.collector)."""

from __future__ import annotations

import gc

import pytest

from bench.core.collector import collector_paused


def test_the_collector_is_paused_inside_the_block_and_put_back_as_it_was():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_caller_that_had_paused_the_collector_keeps_it_paused():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_import_that_fails_inside_the_block_still_resumes_collecting():
    with pytest.raises(KeyError), collector_paused():
        raise KeyError("an import that fails")
    assert gc.isenabled()
