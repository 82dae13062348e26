from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import render


@pytest.fixture(scope="session", autouse=True)
def _isolated_copier_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep a developer's own Copier settings (defaults, trust) out of every test, and give git an
    identity for the commits tests and Copier make, on machines that have none configured."""
    settings = tmp_path_factory.mktemp("copier-settings") / "settings.yml"
    settings.write_text("{}\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COPIER_SETTINGS_PATH", str(settings))
        for role in ("AUTHOR", "COMMITTER"):
            patch.setenv(f"GIT_{role}_NAME", "Template Tests")
            patch.setenv(f"GIT_{role}_EMAIL", "template-tests@example.com")
        yield


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project `copier copy --defaults` gives; rendered once, read by many tests (never modify)."""
    return render(tmp_path_factory.mktemp("default") / "my-ml-project")
