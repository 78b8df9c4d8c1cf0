"""The openai engine names its missing dependency in one line."""

import sys

import pytest

from stages.errors import UserError


def test_missing_openai_client_is_one_clear_error(monkeypatch):
    from stages.engines import openai as openai_engine

    monkeypatch.setitem(sys.modules, "openai", None)  # import openai -> ImportError
    with pytest.raises(UserError, match=r"needs the openai client: pip install 'rlt\[openai\]'"):
        openai_engine._openai()
