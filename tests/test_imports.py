"""Each command imports what it uses: a `submit` never pays for web3, FastAPI or uvicorn."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("web3", "eth_account", "fastapi", "uvicorn", "starlette", "alembic")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_the_cli_and_the_job_registry_load_no_web_server_and_no_chain_library() -> None:
    loaded = _loaded_after(
        "import quickdapp.cli\nfrom quickdapp.jobs.registry import default_registry\ndefault_registry()"
    )
    assert not {module for module in loaded if module.split(".")[0] in HEAVY}


def test_a_worker_process_without_a_chain_loads_no_web_server_chain_library_or_sqlalchemy() -> None:
    # Worker processes write the audit trail through Redis; the supervisor's writer holds SQL.
    loaded = _loaded_after("import quickdapp.workers.process\nimport quickdapp.app.server_app")
    assert not {module for module in loaded if module.split(".")[0] in (*HEAVY, "sqlalchemy")}
