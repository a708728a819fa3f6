import pytest

from scoring import evidence


@pytest.fixture(autouse=True)
def _no_health_provider():
    """Each test starts without account health (tests that want it register a provider); the
    app's own provider is put back afterwards for the tests that follow."""
    wired = evidence.health_provider()
    evidence.set_health_provider(None)
    yield
    evidence.set_health_provider(wired)
