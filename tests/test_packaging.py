"""The package as users get it: a light ``import dvbench``, models and ``study:`` references
loaded on first use, and a wheel that works installed, away from the checkout."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, *, cwd: Path = REPO, python: str = sys.executable) -> str:
    done = subprocess.run(
        [python, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_import_dvbench_is_light_and_loads_the_models_on_first_use():
    _python(
        """
        import sys
        import dvbench
        assert not {"torch", "timm", "optuna"} & set(sys.modules), "import dvbench is heavy"
        assert dvbench.__version__
        from dvbench._references import spec_resolver
        assert spec_resolver("study:small:3") is not None  # declared without the search room
        assert "optuna" not in sys.modules

        import timm
        assert not timm.is_model("dualvit_s")
        assert dvbench.DualViT.__name__ == "DualViT"  # first use imports dvbench.models
        assert timm.is_model("dualvit_s") and timm.is_model("dualvit_l")
        assert dvbench.create_model is dvbench.models.create_model
        """
    )


@pytest.mark.slow
def test_importing_dvbench_models_registers_the_timm_models():
    _python(
        """
        import timm
        import dvbench.models
        assert {"dualvit_s", "dualvit_b", "dualvit_l"} <= set(timm.list_models("dualvit_*"))
        """
    )


def _wheel(tmp_path: Path) -> Path:
    """Build dvbench's wheel from a copy of the sources (the checkout stays untouched)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    no_caches = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "dvbench", source / "dvbench", ignore=no_caches)
    shutil.copytree(REPO / "search_spaces", source / "search_spaces", ignore=no_caches)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--wheel-dir", str(dist), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("dvbench-*.whl")
    return wheel


def _venv_with_dependencies(tmp_path: Path) -> Path:
    """A fresh venv that sees this environment's installed dependencies (torch and the rest,
    through a .pth file, with no download) but not its dvbench: site-packages named in a .pth
    file are put on sys.path without running their own .pth files, so this environment's
    editable install of dvbench stays out."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = _python("import sysconfig; print(sysconfig.get_path('purelib'))", python=str(python))
    Path(purelib.strip(), "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


@pytest.mark.slow
def test_installed_wheel_finds_its_search_spaces_away_from_the_checkout(tmp_path):
    wheel = _wheel(tmp_path)
    venv = _venv_with_dependencies(tmp_path)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--ignore-installed"]
        + [str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    done = subprocess.run(
        [str(venv / "bin" / "dvbench"), "search", "--help"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "--space" in done.stdout, done.stderr[-2000:]

    out = _python(
        """
        import dvbench
        from dvbench.space import list_spaces, load_space
        print(dvbench.__file__)
        print(",".join(list_spaces()))
        print(load_space("small").path)
        """,
        cwd=elsewhere,
        python=python,
    )
    package_file, spaces, small = out.split()
    installed = venv.resolve()
    assert installed in Path(package_file).resolve().parents, "dvbench came from the checkout"
    assert {"small", "medium", "paper"} <= set(spaces.split(","))
    assert installed in Path(small).resolve().parents


def test_every_subpackage_is_listed_for_the_wheel():
    """pyproject.toml lists dvbench's packages (the spaces come from search_spaces/): a new
    subpackage left out of the list would be missing from the wheel."""
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "dvbench").rglob("__init__.py")
    }
    assert found | {"dvbench.space.builtin"} == listed
