"""The generated GitHub Actions workflows and Dockerfile, proven by the tools and engines that use them:
schema validation and zizmor for workflows, their run steps executed here, hadolint for the Dockerfile,
and a real image build and run where a container engine works."""

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import (
    TEMPLATE,
    base_images,
    cannot_run,
    container_engine,
    free_port,
    git_identity,
    git_init,
    image_available,
    project_env,
    render,
    run,
)


def workflows(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.yml"))


def test_the_default_project_has_ci_dependabot_and_a_dockerfile(default_project: Path) -> None:
    names = {path.name for path in workflows(default_project)}
    assert {"ci.yml"} <= names
    assert (default_project / ".github" / "dependabot.yml").is_file()
    assert (default_project / "Dockerfile").is_file()
    assert (default_project / ".dockerignore").is_file()


def test_no_ci_and_no_docker_render_neither(tmp_path: Path) -> None:
    project = render(tmp_path / "p", {"ci": "none", "use_docker": False})

    assert not (project / ".github").exists()
    assert not (project / "Dockerfile").exists()
    assert not (project / ".dockerignore").exists()
    assert "docker" not in (project / "Makefile").read_text(encoding="utf-8")


def test_every_workflow_matches_the_github_schema(default_project: Path) -> None:
    run(
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows"]
        + [str(path) for path in workflows(default_project)],
        default_project,
    )
    run(
        ["check-jsonschema", "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"],
        default_project,
    )


# zizmor's auditor persona: every audit, the pedantic ones too (issue 26: `secrets-outside-env` in the
# update workflow was found only there). The PyTorch and tracking-none variants change the workflows'
# steps and the Dependabot file.
ZIZMOR = ["zizmor", "--offline", "--no-progress", "--persona", "auditor", ".github"]


@pytest.mark.parametrize(
    "answers",
    [{}, {"ml_framework": "pytorch"}, {"experiment_tracking": "none", "use_docker": False}],
    ids=["default", "pytorch", "tracking-none"],
)
def test_zizmor_as_an_auditor_finds_nothing_in_the_workflows(
    tmp_path: Path, render_plain: Any, answers: dict[str, Any]
) -> None:
    project = render_plain(tmp_path / "p", answers)
    result = run(ZIZMOR, project, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout
    run(
        ["check-jsonschema", "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"],
        project,
    )


# repo-review's checks (scientific-python's guide) that fail by decision, each with its reason. The hooks
# are `repo: local` hooks running the locked tools (offline, the versions make and CI run), which
# repo-review recognises only by their public repositories: the test checks that each hook is there.
REPO_REVIEW_HOOKS = {
    "PC100": "check-added-large-files",  # pre-commit-hooks
    "PC110": "black",
    "PC140": "mypy",
    "PC160": "codespell",
    "PC180": "mdformat",
    "PC190": "ruff",
    "SEC001": "zizmor",
}
REPO_REVIEW_DECISIONS = {
    "GH100": "ci: none, the answer: no GitHub Actions workflows",
    "PC170": "pygrep hooks check reStructuredText: the project has none",
    "PC901": "pre-commit.ci is not used: CI runs the hooks (make check-all)",
    "PC902": "pre-commit.ci is not used",
    "PC903": "pre-commit.ci is not used",
    "PY004": "the README and CONTRIBUTING are the documentation of an ML project, not a docs site",
    "PY007": "the Makefile is the task runner (repo-review knows nox, tox, pixi, hatch, spin)",
}


# The three variants the peer checkers were first run on (issue 26).
THREE_VARIANTS = pytest.mark.parametrize(
    "answers",
    [{}, {"ml_framework": "pytorch"}, {"experiment_tracking": "none", "ci": "none"}],
    ids=["default", "pytorch", "tracking-none"],
)


@THREE_VARIANTS
def test_repo_review_finds_nothing_but_decisions(
    tmp_path: Path, render_plain: Any, answers: dict[str, Any]
) -> None:
    project = render_plain(tmp_path / "p", answers)
    run(["git", "init", "--quiet"], project)
    report = json.loads(run(["repo-review", ".", "--format", "json"], project, check=False).stdout)
    failed = {name for name, check in report["checks"].items() if check["result"] is False}

    assert failed <= set(REPO_REVIEW_HOOKS) | set(REPO_REVIEW_DECISIONS), failed
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {REPO_REVIEW_HOOKS[name] for name in failed & set(REPO_REVIEW_HOOKS)} <= hooks


@pytest.mark.slow  # three builds of the package
@THREE_VARIANTS
def test_the_package_and_the_shell_scripts_pass_their_checkers(
    tmp_path: Path, render_plain: Any, answers: dict[str, Any]
) -> None:
    """validate-pyproject (with its plugins) on pyproject.toml; the built wheel and sdist through
    twine's strict check and check-wheel-contents; every shell script through shellcheck."""
    project = render_plain(tmp_path / "p", answers)
    run(["validate-pyproject", "pyproject.toml"], project)
    dist = tmp_path / "dist"
    run(["uv", "build", "--quiet", "--out-dir", str(dist), "."], project)
    (wheel,), (sdist,) = dist.glob("*.whl"), dist.glob("*.tar.gz")
    run(["twine", "check", "--strict", str(wheel), str(sdist)], project)
    run(["check-wheel-contents", str(wheel)], project)
    scripts = sorted(project.rglob("*.sh"))
    assert scripts, "docker/postgres-init.sh"
    run(["shellcheck", *map(str, scripts)], project)


@pytest.mark.parametrize("template_updates", [True, False])
def test_each_pin_has_one_owner_the_template_or_dependabot(
    tmp_path: Path, render_plain: Any, template_updates: bool
) -> None:
    """With the weekly template update, every pin the template writes (its actions, its images, the
    bounds in pyproject.toml) is the template's and Dependabot leaves it alone, so that a bot's bump
    and the next release never conflict (issue 25: 5 hunks in 3 files); Dependabot keeps uv.lock
    and whatever the team adds. Without the workflow, Dependabot moves everything."""
    project = render_plain(tmp_path / "p", {"template_updates": template_updates})
    config = yaml.safe_load((project / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    ignored = {
        update["package-ecosystem"]: {
            rule["dependency-name"]
            for rule in update.get("ignore", [])
            if "update-types" not in rule
        }
        for update in config["updates"]
    }
    uv = next(update for update in config["updates"] if update["package-ecosystem"] == "uv")
    actions = {
        line.split("uses:", 1)[1].split("@", 1)[0].strip()
        for path in workflows(project)
        for line in path.read_text(encoding="utf-8").splitlines()
        if "uses:" in line
    }
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    images = {
        line.split()[1].split(":", 1)[0]
        for line in dockerfile.splitlines()
        if line.startswith("FROM")
    }
    compose = yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))
    pulled = {s["image"].split(":", 1)[0] for s in compose["services"].values() if "image" in s}

    if template_updates:
        assert ignored["github-actions"] == actions
        assert ignored["docker"] == images - {"uv", "builder", "tracking-server"}
        assert ignored["docker-compose"] == pulled
        assert uv["versioning-strategy"] == "lockfile-only"
    else:
        assert ignored == {
            "github-actions": set(),
            "uv": set(),
            "docker": set(),
            "docker-compose": set(),
        }
        assert "versioning-strategy" not in uv


def test_every_action_is_pinned_to_a_commit_with_its_version(default_project: Path) -> None:
    uses = [
        line.split("uses:", 1)[1].strip()
        for path in workflows(default_project)
        for line in path.read_text(encoding="utf-8").splitlines()
        if "uses:" in line
    ]
    assert uses
    for use in uses:
        reference, _, comment = use.partition(" # ")
        sha = reference.rsplit("@", 1)[1]
        assert len(sha) == 40, use
        assert all(c in "0123456789abcdef" for c in sha), use
        assert comment.startswith("v"), use


def test_the_template_repository_is_formatted_linted_and_typed() -> None:
    """This repository holds itself to what it generates: Black, ruff and strict mypy, with the
    settings of its own pyproject.toml (its pre-commit hooks run the same)."""
    run(["black", "--check", "--quiet", "."], TEMPLATE)
    run(["ruff", "check", "--quiet", "."], TEMPLATE)
    run(["mypy"], TEMPLATE)
    tracked = run(["git", "ls-files"], TEMPLATE).stdout.splitlines()
    markdown = [
        path for path in tracked if path.endswith(".md") and not path.startswith("template/")
    ]
    run(["mdformat", "--check", *markdown], TEMPLATE)
    run(["codespell", *[path for path in tracked if path != "uv.lock"]], TEMPLATE)


def test_the_template_repository_s_own_workflows_are_valid_and_run_the_suite() -> None:
    own = sorted((TEMPLATE / ".github" / "workflows").glob("*.yml"))
    assert {path.name for path in own} == {"ci.yml", "release.yml"}
    run(
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, own)],
        TEMPLATE,
    )
    audit = run(ZIZMOR, TEMPLATE, check=False)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    # Dependabot keeps this repository's own pins (actions, the lock of the suite's tools) moving.
    run(
        ["check-jsonschema", "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"],
        TEMPLATE,
    )
    ci = yaml.safe_load((TEMPLATE / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    steps = [step.get("run", "") for job in ci["jobs"].values() for step in job["steps"]]
    assert "bash .ci/run" in steps  # the same command as the CI that lands changes here
    release = (TEMPLATE / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    assert "python3 scripts/releases.py tag" in release
    # The same pins as the generated workflows.
    generated = TEMPLATE / "template" / "{% if ci == 'github' %}.github{% endif %}" / "workflows"
    pins = {line.split("uses:", 1)[1].strip() for path in [*own, *generated.iterdir()]
            for line in path.read_text(encoding="utf-8").splitlines() if "uses:" in line}  # fmt: skip
    assert len({pin.split("@")[0] for pin in pins}) == len(pins), pins


def test_hadolint_finds_nothing_in_the_dockerfile(default_project: Path) -> None:
    run(["hadolint", "Dockerfile"], default_project)


@pytest.mark.parametrize("tracking", ["mlflow", "none"])
def test_the_team_server_compose_file_is_valid_and_keeps_secrets_out(
    tmp_path: Path, tracking: str
) -> None:
    """compose.yaml against the Compose schema (its images cannot be pulled here: tests/test_team.py
    runs its MLflow command against a real PostgreSQL instead); credentials only from .env, which git
    ignores; every service health-checked, its data in named volumes."""
    project = render(tmp_path / "p", {"experiment_tracking": tracking})
    run(["check-jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml"], project)
    compose = yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    servers = {"postgres", "mlflow"} if tracking == "mlflow" else {"postgres"}
    assert set(services) == servers | {"model"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        if name in servers:
            named = [volume.split(":")[0] for volume in service.get("volumes", [])]
            assert any(volume in compose["volumes"] for volume in named), name
    # The champion's server: only when asked for (a profile), the project's own files read-only.
    model = services["model"]
    assert model["profiles"] == ["model"]
    assert model["command"][0] == "serve"
    assert all(volume.endswith(":ro") for volume in model["volumes"])
    assert "/ready" in model["healthcheck"]["test"][-1]
    password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password.startswith("${POSTGRES_PASSWORD:?"), password
    # Every published port listens on loopback unless .env's BIND_ADDRESS says otherwise (issue 27).
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)
    if tracking == "mlflow":
        # Every request to the MLflow server signs in; its database role is not the superuser.
        assert services["mlflow"]["command"][:2] == ["--app-name", "basic-auth"]
        store = services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
        assert store.startswith("postgresql+psycopg://mlflow_server:${MLFLOW_DB_PASSWORD}@"), store
        assert "--serve-artifacts" in services["mlflow"]["command"]
        assert services["mlflow"]["build"]["target"] == "tracking-server"
        assert "AS tracking-server" in (project / "Dockerfile").read_text(encoding="utf-8")
    git_init(project)
    # The example's password is refused before compose is asked for anything.
    example = (project / ".env.example").read_text(encoding="utf-8")
    assert "\nPOSTGRES_PASSWORD=change-me\n" in example
    for line in ("POSTGRES_PASSWORD=change-me", "POSTGRES_PASSWORD='change-me'  # later"):
        (project / ".env").write_text(f"{line}\n", encoding="utf-8")
        refused = run(["make", "tracking-server"], project, check=False)
        assert refused.returncode == 2, refused.stdout
        assert "POSTGRES_PASSWORD in .env: still the example's change-me" in refused.stdout
    # Each password the example leaves at change-me is named, all in one line.
    (project / ".env").write_text(example, encoding="utf-8")
    refused = run(["make", "tracking-server"], project, check=False)
    placeholders = [
        line.split("=")[0]
        for line in example.splitlines()
        if line.endswith("=change-me") and not line.startswith("#")
    ]
    assert len(placeholders) == (5 if tracking == "mlflow" else 2), placeholders
    assert f"{' '.join(placeholders)} in .env: still the example's" in refused.stdout
    (project / ".env").write_text("POSTGRES_PASSWORD=secret\n", encoding="utf-8")
    ignored = run(["git", "status", "--porcelain", "--ignored", ".env", ".env.example"], project)
    assert "!! .env\n" in ignored.stdout
    assert run(["git", "ls-files", ".env.example"], project).stdout == ".env.example\n"


def _steps(workflow: dict[str, Any], job: str) -> list[str]:
    return [step["run"] for step in workflow["jobs"][job]["steps"] if "run" in step]


@pytest.mark.slow
def test_the_ci_lint_and_test_jobs_run_green_here(tmp_path: Path) -> None:
    project = render(tmp_path / "p")
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text("utf-8"))
    # As a team would push it: generated, set up once (which writes uv.lock), committed.
    git_init(project)
    run(["make", "setup"], project)
    run(["git", "add", "uv.lock"], project)
    run(["git", "commit", "--quiet", "--no-verify", "-m", "Lock"], project, git_identity())
    env = project_env() | {k: str(v) for k, v in workflow["env"].items()}
    python = workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"][0]
    # The test job's `make test-all` includes the stress tests (kills, concurrent trains): the one place
    # this suite runs them.
    all_tests_ran = False
    for job in ("lint", "test"):
        for command in _steps(workflow, job):
            assert "${{" not in command, f"keep expressions out of run steps: {command}"
            # setup-uv's python-version input sets UV_PYTHON.
            done = run(
                ["bash", "-eo", "pipefail", "-c", command], project, env | {"UV_PYTHON": python}
            )
            if command == "make test-all":
                assert "deselected" not in done.stdout, done.stdout
                all_tests_ran = True
    assert all_tests_ran, "the test job runs `make test-all`"

    # A team whose table is private (not in git): the pipeline step skips with a notice, green.
    pipeline = next(command for command in _steps(workflow, "test") if "make train" in command)
    config = project / "configs" / "train.yaml"
    text = config.read_text(encoding="utf-8").replace("data/raw/wine.csv", "data/raw/private.csv")
    config.write_text(text, encoding="utf-8")
    skipped = run(["bash", "-eo", "pipefail", "-c", pipeline], project, env | {"UV_PYTHON": python})
    assert "::notice::The table configs/train.yaml names is not in the checkout" in skipped.stdout


@pytest.mark.slow
@pytest.mark.container
def test_the_image_builds_runs_as_non_root_and_scores_the_sample(tmp_path: Path) -> None:
    engine = container_engine()
    if engine is None:
        pytest.skip("no working container engine (docker or podman)")
    project = render(tmp_path / "p")
    for base in base_images(project / "Dockerfile"):
        if not image_available(engine, base):
            pytest.skip(f"{engine} cannot find or pull {base} (no registry, and no local stand-in)")
    python = next(image for image in base_images(project / "Dockerfile") if "python" in image)
    problem = cannot_run(engine, python)
    if problem:  # e.g. podman without this machine's settings (.ci/run exports CONTAINERS_CONF)
        pytest.skip(f"{engine} cannot run a container here: {problem}")
    env = project_env()
    git_init(project, env)
    run(["make", "setup"], project, env)
    run(["make", "data", "train"], project, env)
    tag = f"copier-ml-template-test-{os.getpid()}:latest"

    try:
        run([engine, "build", "--tag", tag, "."], project, env)
        # The entry point is the CLI, it runs as a non-root user, and it scores the held-out sample
        # with the model trained above, mounted read-only.
        assert "predict" in run([engine, "run", "--rm", tag, "--help"], project, env).stdout
        uid = run([engine, "run", "--rm", "--entrypoint", "id", tag, "-u"], project, env).stdout
        assert uid.strip() != "0"
        # Nothing but the environment and the package: no configs, data, models or secrets.
        (project / ".env.local").write_text("POSTGRES_PASSWORD=leaked\n", encoding="utf-8")
        run([engine, "build", "--tag", tag, "."], project, env)
        listing = run(
            [engine, "run", "--rm", "--entrypoint", "ls", tag, "-A", "/app"], project, env
        )
        assert listing.stdout.split() == [".venv"]
        # .dockerignore is an allow-list: the build stage saw only what the image needs.
        builder = f"{tag.rsplit(':', 1)[0]}-builder:latest"
        run([engine, "build", "--target", "builder", "--tag", builder, "."], project, env)
        try:
            seen = run(
                [engine, "run", "--rm", "--entrypoint", "ls", builder, "-A", "/app"], project, env
            )
        finally:
            subprocess.run([engine, "rmi", "--force", builder], capture_output=True, check=False)
        assert sorted(seen.stdout.split()) == [
            ".venv", "LICENSE", "README.md", "pyproject.toml", "src", "uv.lock"
        ]  # fmt: skip
        scored = run(
            [
                *(engine, "run", "--rm"),
                *("-v", f"{project / 'configs'}:/app/configs:ro"),
                *("-v", f"{project / 'models'}:/app/models:ro"),
                *("-v", f"{project / 'data'}:/app/data:ro"),
                *(tag, "predict"),  # the config's table, with the champion of its experiment
            ],
            project,
            env,
        )
        table = (project / "data" / "raw" / "wine.csv").read_text("utf-8").splitlines()
        assert len(scored.stdout.splitlines()) == len(table)
        assert scored.stdout.splitlines()[0].startswith("prediction,probability_")
        # stderr says which run scored the rows, and nothing worse than that.
        assert "the champion of my-ml-project-wine" in scored.stderr
        assert all(" INFO " in line for line in scored.stderr.splitlines()), scored.stderr

        # The image serves: `serve` in a container, asked for a row through the published port.
        assert_the_image_serves(engine, tag, project, env)

        # Dependabot's docker update moves the Python base image to a newer minor version and nothing
        # else (.python-version stays): the image must still build and run.
        dockerfile = project / "Dockerfile"
        text = dockerfile.read_text(encoding="utf-8")
        newer = "python:3.13-slim"
        if image_available(engine, newer):
            dockerfile.write_text(text.replace("python:3.12-slim", newer), encoding="utf-8")
            run([engine, "build", "--tag", tag, "."], project, env)
            version = run(
                [engine, "run", "--rm", "--entrypoint", "python", tag, "-V"], project, env
            )
            assert version.stdout.startswith("Python 3.13")
            assert "predict" in run([engine, "run", "--rm", tag, "--help"], project, env).stdout
    finally:
        subprocess.run([engine, "rmi", "--force", tag], capture_output=True, check=False)


def assert_the_image_serves(engine: str, tag: str, project: Path, env: dict[str, str]) -> None:
    """`serve --host 0.0.0.0` in a container, the champion mounted read-only, port 8000 published on
    a free loopback port: /ready names the champion and /predict answers a row."""
    port = free_port()
    name = f"copier-ml-template-serve-{os.getpid()}"
    run(
        [
            *(engine, "run", "--detach", "--rm", "--name", name),
            *("-p", f"127.0.0.1:{port}:8000"),
            *("-v", f"{project / 'configs'}:/app/configs:ro"),
            *("-v", f"{project / 'models'}:/app/models:ro"),
            *(tag, "serve", "--host", "0.0.0.0"),  # noqa: S104  # inside the container
        ],
        project,
        env,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    header, first = (project / "data" / "raw" / "wine.csv").read_text("utf-8").splitlines()[:2]
    row = {
        key: float(value) for key, value in zip(header.split(","), first.split(","), strict=True)
    }
    del row["target"]
    try:
        for _ in range(120):  # up to a minute for the server to start
            try:
                with opener.open(f"http://127.0.0.1:{port}/ready", timeout=5) as response:
                    ready = json.load(response)
                break
            except OSError:
                time.sleep(0.5)
        else:
            logs = subprocess.run([engine, "logs", name], capture_output=True, text=True)
            raise AssertionError(f"serve did not get ready in the container: {logs.stderr}")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=json.dumps([row]).encode(),
            headers={"Content-Type": "application/json"},
        )
        with opener.open(request, timeout=10) as response:
            answer = json.load(response)
    finally:
        subprocess.run([engine, "rm", "--force", name], capture_output=True, check=False)
    assert answer["run_id"] == ready["run_id"]
    assert len(answer["predictions"]) == 1
