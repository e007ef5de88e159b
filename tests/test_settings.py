"""Settings from NESTML_REGISTRY_* variables: what each accepts, and the one-line error for what it does not."""

from __future__ import annotations

import json
import subprocess

import pytest
from server_fixtures import CLI

from nestml_registry.compiler.request import MAX_FILES
from nestml_registry.service.settings import Settings, SettingsError


def test_defaults_and_zero_where_it_means_none() -> None:
    s = Settings.from_env({"NESTML_REGISTRY_HOME": "/tmp/h"})
    assert s.max_files == MAX_FILES and s.artifact_cache_bytes == 64 * 1024 * 1024
    assert Settings.from_env({"NESTML_REGISTRY_ARTIFACT_CACHE_BYTES": "0"}).artifact_cache_bytes == 0
    assert Settings.from_env({"NESTML_REGISTRY_MODULE_CACHE_BYTES": "512M"}).module_cache_bytes == 512 * 1024 ** 2


@pytest.mark.parametrize(("env", "says"), [
    ({"NESTML_REGISTRY_MAX_FILES": str(MAX_FILES + 1)}, f"at most {MAX_FILES} .nestml files"),
    ({"NESTML_REGISTRY_JOBS": "two"}, "NESTML_REGISTRY_JOBS='two' is not a whole number"),
    ({"NESTML_REGISTRY_LEASE_SECONDS": "0"}, "must be positive"),
    ({"NESTML_REGISTRY_ARTIFACT_CACHE_BYTES": "-1"}, "must be 0 or more"),
    ({"NESTML_REGISTRY_SANDBOX": "maybe"}, "use 1 or 0"),
    ({"NESTML_REGISTRY_STEP_MEMORY": "lots"}, "give a size in bytes"),
])
def test_bad_values_say_which_variable_and_what_to_give(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env(env)


def test_the_cli_reports_a_bad_setting_in_one_line_and_in_the_error_shape(tmp_path) -> None:
    env = {"NESTML_REGISTRY_HOME": str(tmp_path), "NESTML_REGISTRY_MAX_FILES": "100", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([*CLI, "models", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["code"] == "invalid_setting"
    assert proc.stderr.count("\n") == 1 and "NESTML_REGISTRY_MAX_FILES=100" in proc.stderr
