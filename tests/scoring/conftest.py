import pytest

from scoring import evidence


@pytest.fixture(autouse=True)
def _no_health_provider():
    """Each test starts without account health, as the app does until the wiring plugs it in."""
    evidence.set_health_provider(None)
    yield
    evidence.set_health_provider(None)
