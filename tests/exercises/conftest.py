"""Guided-lab tests reuse the labs' fixture that puts lab files under tmp_path and stops hosting labs afterwards."""

from tests.labs.conftest import lab_data  # noqa: F401
