import pytest

from pipelines.tasks import _transient


class State:
    def __init__(self, error):
        self.error = error

    def result(self):
        raise self.error


@pytest.mark.parametrize(("error", "retried"), [
    (OSError("share busy"), True),
    (FileNotFoundError("gone for a moment"), True),
    (ValueError("row 3: unparseable"), False),
    (RuntimeError("bug"), False),
])
def test_only_os_errors_are_retried(error, retried):
    assert _transient(None, None, State(error)) is retried
