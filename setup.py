"""The one build setting pyproject.toml cannot express: the repository's top-level data
folders (sql/, report_templates/, workbooks/vba/) shipped inside the wheel.

setuptools' ``package_dir`` maps each folder (and each of its subfolders) to a package
under ``crm_batch._data`` whose files are package data, so a wheel holds
``crm_batch/_data/sql/...`` while the checkout keeps its fixed layout. The folder list is
:data:`crm_batch.resources.DATA_FOLDERS`, read without importing the package (the build
environment does not have its dependencies); crm_batch.resources locates the folders at
run time. Everything else (metadata, dependencies, entry points) is in pyproject.toml.
"""

import runpy
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
DATA_FOLDERS = runpy.run_path(str(ROOT / "crm_batch" / "resources.py"))["DATA_FOLDERS"]


def data_packages() -> dict[str, str]:
    """``crm_batch._data.<dotted folder>`` -> folder, for every (sub)folder of the data."""
    mapping = {}
    for folder in DATA_FOLDERS:
        root = Path(folder)
        subfolders = sorted(p for p in (ROOT / root).rglob("*") if p.is_dir())
        for directory in [root, *(p.relative_to(ROOT) for p in subfolders)]:
            if directory.name == "__pycache__":
                continue
            mapping["crm_batch._data." + ".".join(directory.parts)] = directory.as_posix()
    return mapping


DATA_PACKAGES = data_packages()

setup(
    packages=[*find_packages(include=["crm_batch", "crm_batch.*"]), *DATA_PACKAGES],
    package_dir=DATA_PACKAGES,
    package_data={name: ["*"] for name in DATA_PACKAGES},
)
